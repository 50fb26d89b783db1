/**
 * Preloaded into every process the benchmark measures (`node --expose-gc --import ./bench/probe.ts`):
 * answers `{"cmd":"mem"}` with the memory after a full GC (only a process can read its own heap),
 * and shuts the process down with SIGTERM, as production would, when the orchestrator goes away.
 * It adds no handler and no timer to the measured code paths.
 */
import { emit, serveCommands } from './commands.js';

const MAX_LIFE_MS = Number(process.env.BENCH_MAX_LIFE_MS ?? 20 * 60_000);

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  // Twice: the first pass runs finalizers whose objects the second one frees.
  gc?.();
  gc?.();
}

serveCommands(
  (command) => {
    if (command.cmd !== 'mem') throw new Error(`unknown probe command ${command.cmd}`);
    collectGarbage();
    const usage = process.memoryUsage();
    emit({ evt: 'mem', gc: typeof (globalThis as { gc?: unknown }).gc === 'function', ...usage });
  },
  { maxLifeMs: MAX_LIFE_MS, stop: () => process.kill(process.pid, 'SIGTERM') },
);
