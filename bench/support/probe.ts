/**
 * Preloaded into every process the benchmark measures (`node --expose-gc --import ./bench/support/probe.ts`):
 * answers `{"cmd":"mem"}` with the memory after a full GC (only a process can read its own heap),
 * and shuts the process down with SIGTERM, as production would, when the orchestrator goes away.
 * On request only, `{"cmd":"loop-start"}` starts (or resets) an event-loop delay histogram and a
 * GC observer, and `{"cmd":"loop"}` reports both: what blocked the loop while it was measured.
 * Until asked it adds no handler and no timer to the measured code paths.
 */
import { PerformanceObserver, constants, monitorEventLoopDelay } from 'node:perf_hooks';
import type { IntervalHistogram } from 'node:perf_hooks';
import { emit, serveCommands } from './commands.js';

const MAX_LIFE_MS = Number(process.env.BENCH_MAX_LIFE_MS ?? 20 * 60_000);
const NS_PER_MS = 1e6;
/** Sampling resolution of the event-loop delay histogram. */
const LOOP_RESOLUTION_MS = 10;

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  // Twice: the first pass runs finalizers whose objects the second one frees.
  gc?.();
  gc?.();
}

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

interface GcTally {
  count: number;
  totalMs: number;
  maxMs: number;
}

let loop: IntervalHistogram | null = null;
let gcObserver: PerformanceObserver | null = null;
let gcPauses: Record<string, GcTally> = {};
/** Pauses over 20 ms, with when they happened (ms since loop-start). */
let longGc: Array<{ kind: string; ms: number; at: number }> = [];
let measuredFrom = 0;
/** Timer callbacks that came more than BLOCK_MS late: when (ms into the window, and wall clock) and by how much. */
let blocks: Array<{ ms: number; at: number; wallMs: number }> = [];
let blockTimer: NodeJS.Timeout | null = null;
const BLOCK_MS = 40;

function startLoopStats(): void {
  loop ??= monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loop.enable();
  loop.reset();
  gcPauses = {};
  longGc = [];
  blocks = [];
  measuredFrom = performance.now();
  if (!blockTimer) {
    let last = performance.now();
    blockTimer = setInterval(() => {
      const now = performance.now();
      const late = now - last - LOOP_RESOLUTION_MS;
      if (late > BLOCK_MS) blocks.push({ ms: Math.round(late), at: Math.round(last - measuredFrom), wallMs: Date.now() - Math.round(now - last) });
      last = now;
    }, LOOP_RESOLUTION_MS);
    blockTimer.unref();
  }
  gcObserver ??= new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const detail = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail;
      const kind = GC_KINDS[detail?.kind ?? -1] ?? 'other';
      const tally = (gcPauses[kind] ??= { count: 0, totalMs: 0, maxMs: 0 });
      tally.count++;
      tally.totalMs += entry.duration;
      tally.maxMs = Math.max(tally.maxMs, entry.duration);
      if (entry.duration > 20) longGc.push({ kind, ms: Math.round(entry.duration), at: Math.round(entry.startTime - measuredFrom) });
    }
  });
  gcObserver.observe({ entryTypes: ['gc'] });
}

function loopStats(): Record<string, unknown> {
  if (!loop) throw new Error('loop-start was not sent');
  const ms = (ns: number) => Math.round((ns / NS_PER_MS) * 10) / 10;
  return {
    windowMs: Math.round(performance.now() - measuredFrom),
    // Delay beyond the sampling interval: how late the loop came back to a timer.
    loopDelayMs: { p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max), mean: ms(loop.mean) },
    gc: Object.fromEntries(Object.entries(gcPauses).map(([k, t]) => [k, { count: t.count, totalMs: Math.round(t.totalMs), maxMs: Math.round(t.maxMs * 10) / 10 }])),
    longGc,
    blocks,
  };
}

serveCommands(
  (command) => {
    if (command.cmd === 'loop-start') {
      startLoopStats();
      return emit({ evt: 'loop-started' });
    }
    if (command.cmd === 'loop') return emit({ evt: 'loop', ...loopStats() });
    if (command.cmd !== 'mem') throw new Error(`unknown probe command ${command.cmd}`);
    collectGarbage();
    const usage = process.memoryUsage();
    emit({ evt: 'mem', gc: typeof (globalThis as { gc?: unknown }).gc === 'function', ...usage });
  },
  { maxLifeMs: MAX_LIFE_MS, stop: () => process.kill(process.pid, 'SIGTERM') },
);
