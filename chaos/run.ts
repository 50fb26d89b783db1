import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runCampaign } from './campaign.js';
import { checkHistory, formatReport } from './checker.js';
import { readHistory } from './history.js';
import { KNOWN_VIOLATIONS } from './known-violations.js';
import type { CheckReport } from './checker.js';
import { Prng } from './prng.js';
import type { Mode } from './topology.js';

/** `10m`, `60s`, `1500ms` or plain seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!match) throw new Error(`--duration: "${text}" is not a duration like 60s or 10m`);
  const n = Number(match[1]);
  return Math.round(match[2] === 'ms' ? n : match[2] === 'm' ? n * 60_000 : n * 1_000);
}

/** The CLI's seed: CHAOS_SEED when given (a replay), else a fresh one. */
export function seedFrom(env: string | undefined): number {
  if (env === undefined || env === '') return Prng.freshSeed();
  if (!/^\d+$/.test(env)) throw new Error(`CHAOS_SEED must be a non-negative integer, got "${env}"`);
  return Number(env) >>> 0;
}

/** Runs the campaign in each mode asked for; resolves with the reports, printing each. */
export async function main(argv: string[], env: Record<string, string | undefined>): Promise<CheckReport[]> {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string', default: '10m' },
      mode: { type: 'string', default: 'both' },
      out: { type: 'string', default: 'chaos-history' },
      // Checks a recorded history again (after a change of the checker or of the known violations).
      check: { type: 'string' },
    },
  });
  if (values.check !== undefined) {
    const report = checkHistory(readHistory(values.check), KNOWN_VIOLATIONS);
    process.stdout.write(`${formatReport(report)}\n`);
    return [report];
  }
  const mode = values.mode;
  if (mode !== 'single' && mode !== 'cluster' && mode !== 'both') throw new Error(`--mode must be single, cluster or both, got "${mode}"`);
  const durationMs = parseDuration(values.duration);
  const seed = seedFrom(env.CHAOS_SEED);
  process.stdout.write(`CHAOS_SEED=${seed}\n`);
  mkdirSync(values.out, { recursive: true });
  const modes: Mode[] = mode === 'both' ? ['single', 'cluster'] : [mode];
  const reports: CheckReport[] = [];
  for (const m of modes) {
    const historyPath = join(values.out, `${m}-${seed}.jsonl`);
    const report = await runCampaign({ mode: m, seed, durationMs, historyPath, say: (line) => process.stdout.write(`${line}\n`) });
    process.stdout.write(`${formatReport(report)}\n`);
    reports.push(report);
  }
  return reports;
}

if (resolve(process.argv[1] ?? '') === fileURLToPath(import.meta.url)) {
  // The servers run as `node src/main.ts` from the repository root.
  process.chdir(join(dirname(fileURLToPath(import.meta.url)), '..'));
  main(process.argv.slice(2), process.env).then(
    (reports) => process.exit(reports.every((r) => r.ok) ? 0 : 1),
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exit(2);
    },
  );
}
