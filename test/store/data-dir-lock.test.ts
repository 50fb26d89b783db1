import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CHILD = join(import.meta.dirname, 'data-dir-lock-child.ts');

/** Starts `count` processes that all take the DATA_DIR lock at the same moment; how many got it. */
async function holdersAtOnce(dir: string, count: number): Promise<number> {
  const at = Date.now() + 2_500; // past every child's start-up
  const outs = await Promise.all(Array.from({ length: count }, () => run(process.execPath, ['--import', 'tsx', CHILD, dir, String(at)])));
  return outs.filter((out) => out.stdout.trim() === 'got').length;
}

describe('DataDirLock between processes : one holder at a time', () => {
  it('one holder when several processes start on an empty DATA_DIR', async () => {
    let worst = 0;
    for (let round = 0; round < 3; round++) worst = Math.max(worst, await holdersAtOnce(mkdtempSync(join(tmpdir(), 'lock-')), 8));
    expect(worst).toBe(1);
  }, 60_000);

  it('one holder when several processes take over a stale lock file', async () => {
    let worst = 0;
    for (let round = 0; round < 3; round++) {
      const dir = mkdtempSync(join(tmpdir(), 'lock-'));
      writeFileSync(join(dir, 'booksai-progress.pid'), '999999\n'); // a process that no longer runs
      worst = Math.max(worst, await holdersAtOnce(dir, 8));
    }
    expect(worst).toBe(1);
  }, 60_000);
});
