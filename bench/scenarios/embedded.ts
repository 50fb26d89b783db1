/**
 * Embedded default: `npm run build`, then `node dist/main.js` exactly as `npm start` runs it,
 * with neither REDIS_URL nor DATABASE_URL. Measures the time from spawn to a 200 from /healthz
 * and the RSS after `idleMs` of idling, for a first start (new DATA_DIR: the database is
 * created) and a restart on the same DATA_DIR.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Plan } from '../support/plan.js';
import { rssBytes } from '../support/proc.js';
import type { BenchContext } from '../support/targets.js';
import { HOST, freePort } from '../support/targets.js';

export interface EmbeddedStart {
  phase: 'first start' | 'restart';
  /** Spawn to the first 200 from /healthz. */
  readyMs: number;
  /** VmRSS after idling, bytes. */
  idleRss: number;
  /** VmHWM: the most the process ever held, bytes. */
  peakRss: number;
}

export interface EmbeddedResult {
  idleMs: number;
  starts: EmbeddedStart[];
}

const READY_TIMEOUT_MS = 60_000;

export async function runEmbedded(ctx: BenchContext, plan: Plan): Promise<EmbeddedResult> {
  execFileSync('npm', ['run', 'build'], { cwd: ctx.root, stdio: 'ignore' });
  const dataDir = mkdtempSync(join(tmpdir(), 'booksai-bench-embedded-'));
  try {
    const starts: EmbeddedStart[] = [];
    for (const phase of ['first start', 'restart'] as const) starts.push(await startOnce(ctx, dataDir, phase, plan.embedded.idleMs));
    return { idleMs: plan.embedded.idleMs, starts };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function startOnce(ctx: BenchContext, dataDir: string, phase: EmbeddedStart['phase'], idleMs: number): Promise<EmbeddedStart> {
  const port = await freePort();
  const started = performance.now();
  // The command line of `npm start` (package.json), without npm in between.
  const child = spawn(process.execPath, ['--max-semi-space-size=32', 'dist/main.js'], {
    cwd: ctx.root,
    env: { PATH: process.env.PATH ?? '', PORT: String(port), HOST, DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = once(child, 'exit');
  try {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the embedded server exited with ${child.exitCode}`);
      const ok = await fetch(`http://${HOST}:${port}/healthz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`the embedded server did not answer /healthz within ${READY_TIMEOUT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const readyMs = Math.round(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, idleMs));
    const peak = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
    return { phase, readyMs, idleRss: rssBytes(child.pid as number), peakRss: Number(peak?.[1] ?? 0) * 1024 };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}
