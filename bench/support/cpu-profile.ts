/** Reads a V8 `.cpuprofile` (from `node --cpu-prof`) into the functions that cost the most. */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  /** Node id of each sample, and the µs since the previous one. */
  samples: number[];
  timeDeltas: number[];
}

/** Which part of the profile to read, in ms from its start (start-up and shutdown left out). */
export interface ProfileWindow {
  fromMs: number;
  toMs: number;
}

export interface HotFunction {
  /** `name (file:line)`, the file relative to the project or a node: builtin. */
  name: string;
  /** Percent of all samples spent in the function itself. */
  selfPercent: number;
  /** Percent of all samples spent in it or in what it called. */
  totalPercent: number;
}

export interface ProfileSummary {
  file: string;
  /** The part of the profile summarized. */
  durationMs: number;
  /** Highest self time first. */
  bySelf: HotFunction[];
  /** The project's own functions (src/) by inclusive time. */
  projectByTotal: HotFunction[];
}

export function summarizeProfile(file: string, root: string, window: ProfileWindow, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const hitsById = new Map<number, number>();
  let elapsedUs = 0;
  let totalHits = 0;
  profile.samples.forEach((id, i) => {
    elapsedUs += profile.timeDeltas[i] ?? 0;
    if (elapsedUs < window.fromMs * 1000 || elapsedUs > window.toMs * 1000) return;
    hitsById.set(id, (hitsById.get(id) ?? 0) + 1);
    totalHits++;
  });
  totalHits ||= 1;
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = hitsById.get(node.id) ?? 0;
    if (hits === 0) continue;
    self.set(label(node, root), (self.get(label(node, root)) ?? 0) + hits);
    // Inclusive time: each function on the stack once, however deep its recursion.
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const key = label(byId.get(id)!, root);
      if (seen.has(key)) continue;
      seen.add(key);
      total.set(key, (total.get(key) ?? 0) + hits);
    }
  }
  const hot = (name: string): HotFunction => ({
    name,
    selfPercent: round((100 * (self.get(name) ?? 0)) / totalHits),
    totalPercent: round((100 * (total.get(name) ?? 0)) / totalHits),
  });
  return {
    file,
    durationMs: Math.min(window.toMs, (profile.endTime - profile.startTime) / 1000) - window.fromMs,
    bySelf: [...self.keys()]
      .sort((a, b) => (self.get(b) ?? 0) - (self.get(a) ?? 0))
      .slice(0, top)
      .map(hot),
    projectByTotal: [...total.keys()]
      .filter((name) => name.includes('(src/'))
      .sort((a, b) => (total.get(b) ?? 0) - (total.get(a) ?? 0))
      .slice(0, top)
      .map(hot),
  };
}

function label(node: ProfileNode, root: string): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName || '(anonymous)';
  if (url === '') return name;
  const file = url.startsWith('file://') ? relative(root, fileURLToPath(url)) : url;
  // tsx-compiled TypeScript reports every function on line 1: the file alone is the truth there.
  return file.endsWith('.ts') ? `${name} (${file})` : `${name} (${file}:${lineNumber + 1})`;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
