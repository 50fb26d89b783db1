import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { runCampaign } from '../../chaos/campaign.js';
import { formatReport } from '../../chaos/checker.js';
import { seedFrom } from '../../chaos/run.js';
import type { Mode, Topology } from '../../chaos/topology.js';

/** `npm run chaos -- --duration 60s`: one seed (CHAOS_SEED to replay one), the mode's own backends. */
const DURATION_MS = 60_000;

/**
 * The 60 s campaign of `mode` as a test: it fails when an invariant fails other than as a known
 * violation, and prints the report (with the seed) either way. Its servers, its Redis (or
 * cluster), its proxies and its database are its own, stopped however the test ends.
 */
export function campaignTest(mode: Mode): void {
  const dir = mkdtempSync(join(tmpdir(), `booksai-chaos-${mode}-`));
  let topology: Topology | null = null;
  let keep = true;
  afterAll(async () => {
    await topology?.stop();
    // The history of a failed run stays, for reading and for `npm run chaos -- --check`.
    if (!keep) rmSync(dir, { recursive: true, force: true });
  });

  it(`keeps every promise under 60 s of seeded faults (${mode})`, async () => {
    const seed = seedFrom(process.env.CHAOS_SEED);
    const lines: string[] = [];
    const report = await runCampaign({
      mode,
      seed,
      durationMs: DURATION_MS,
      historyPath: join(dir, `${mode}-${seed}.jsonl`),
      say: (line) => lines.push(line),
      onTopology: (t) => void (topology = t),
    });
    const text = `${formatReport(report)}\n  history: ${dir}`;
    process.stdout.write(`${text}\n`);
    keep = !report.ok;
    expect(report.faults).toBeGreaterThan(5);
    expect(report.operations).toBeGreaterThan(500);
    expect(report.ok, text).toBe(true);
  }, 420_000);
}
