import { nextState } from '../src/progress/derive.js';
import type { BookProgress, ProgressUpdate, Step } from '../src/progress/schema.js';
import type { RunHistory } from '../src/analytics/queries.js';

/** One synthetic run: every committed state (with when its step began) and what the recorder would learn from it. */
export interface SyntheticRun {
  start: number;
  durationMs: number;
  states: Array<{ state: BookProgress; stepStartedAt: number }>;
  history: RunHistory;
}

/** mulberry32: small, deterministic. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** A log-normal draw with median `median` and log-sd `sigma`. */
function logNormal(random: () => number, median: number, sigma: number): number {
  return median * Math.exp(sigma * normal(random));
}

/** Share of runs with one step several times slower than usual (a throttled AI call, a retry). */
const OUTLIER_SHARE = 0.04;

/**
 * A run shaped like a real book: 3-30 chapters, 2-6 sections, a run-wide speed (the AI service's
 * load that day), per-step log-normal noise, per-section noise, and a few slow outliers. Times in
 * ms: a 20-chapter book of 4 sections takes about two minutes.
 */
export function syntheticRun(random: () => number, bookId: string, start: number): SyntheticRun {
  const chapters = 3 + Math.floor(random() * 28);
  const sections = 2 + Math.floor(random() * 5);
  const speed = logNormal(random, 1, 0.25);
  const outlier: Step | null = random() < OUTLIER_SHARE ? (['RESEARCH', 'CHAPTERS', 'PROOFREADING'] as const)[Math.floor(random() * 3)]! : null;
  const slow = (step: Step) => (step === outlier ? 3 + 3 * random() : 1);
  const fixed = (step: Step, median: number, sigma: number) => speed * slow(step) * logNormal(random, median, sigma);

  const durations: Partial<Record<Step, number>> = {
    PLANNING: fixed('PLANNING', 1_500, 0.3),
    RESEARCH: fixed('RESEARCH', 6_000, 0.5),
    OUTLINE: fixed('OUTLINE', 300 * chapters, 0.3),
    STRUCTURE: fixed('STRUCTURE', 2_000, 0.3),
  };
  const sectionMs: number[] = [];
  const chapterSpeed = speed * slow('CHAPTERS');
  for (let i = 0; i < chapters * sections; i++) sectionMs.push(chapterSpeed * logNormal(random, 1_200, 0.35));
  durations.CHAPTERS = sectionMs.reduce((a, b) => a + b, 0);
  durations.PROOFREADING = fixed('PROOFREADING', 150 * chapters, 0.3);

  const states: SyntheticRun['states'] = [];
  let state: BookProgress | null = null;
  let now = start;
  let stepStartedAt = start;
  const commit = (update: ProgressUpdate) => {
    state = nextState(bookId, state, update, Math.round(now));
    states.push({ state, stepStartedAt: Math.round(stepStartedAt) });
  };
  const step = (name: Step, update: ProgressUpdate = {}) => {
    stepStartedAt = now;
    commit({ status: 'GENERATING', generationStep: name, ...update });
  };
  commit({ status: 'PLANNING', generationStep: 'PLANNING', totalChapters: chapters, totalSections: sections, currentChapter: 0, currentSection: 0 });
  now += durations.PLANNING!;
  step('RESEARCH');
  now += durations.RESEARCH!;
  step('OUTLINE');
  now += durations.OUTLINE!;
  step('STRUCTURE');
  now += durations.STRUCTURE!;
  step('CHAPTERS', { currentChapter: 1, currentSection: 0 });
  for (let c = 1; c <= chapters; c++) {
    for (let s = 1; s <= sections; s++) {
      if (c > 1 || s > 1) commit({ currentChapter: c, currentSection: s - 1 });
      now += sectionMs[(c - 1) * sections + (s - 1)]!;
    }
    commit({ currentChapter: c, currentSection: sections });
  }
  step('PROOFREADING');
  now += durations.PROOFREADING!;
  commit({ status: 'COMPLETE' });
  const durationMs = Math.round(now) - start;
  const rounded = Object.fromEntries(Object.entries(durations).map(([k, v]) => [k, Math.round(v)]));
  return { start, durationMs, states, history: { totalChapters: chapters, totalSections: sections, durationMs, steps: rounded } };
}
