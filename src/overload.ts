import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { IntervalHistogram } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { RETRY_AFTER_SECONDS, Refusal } from './refusal.js';

/** How often the event-loop delay histogram is read and reset: the monitor reacts within about this long. */
const WINDOW_MS = 250;
/** The histogram's timer: a stall shorter than this is not seen. */
const RESOLUTION_MS = 10;

export interface OverloadLimits {
  /** OVERLOAD_LOOP_DELAY_MS: the longest event-loop stall tolerated in a window; 0: not watched. */
  loopDelayMs: number;
  /** OVERLOAD_HEAP_PERCENT: the share of the V8 heap limit in use tolerated; 0: not watched. */
  heapPercent: number;
}

/** What the process is short of, or null while it keeps up. */
export type OverloadReason = 'event_loop' | 'heap' | null;

/**
 * Admission control: watches event-loop delay (the worst stall of the last two windows, so a
 * burst of load shows within a window and clears a window after it ends) and heap use. While
 * over either limit, check() refuses new streams, WebSockets and publishes with 503
 * `overloaded`; what was admitted before goes on (deliveries are not gated).
 */
export class LoadMonitor {
  readonly #limits: OverloadLimits;
  readonly #histogram: IntervalHistogram;
  readonly #heapLimit = getHeapStatistics().heap_size_limit;
  readonly #timer: NodeJS.Timeout;
  #previousMaxMs = 0;
  #lastSampleAt = performance.now();
  #heapOver = false;

  constructor(limits: OverloadLimits) {
    this.#limits = limits;
    this.#histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.#histogram.enable();
    this.#timer = setInterval(() => this.#sample(), WINDOW_MS);
    this.#timer.unref();
  }

  /** The worst event-loop stall (ms) in the current and the previous window. */
  get loopDelayMs(): number {
    // A sampler that runs late is itself a stall the histogram may not have recorded yet.
    const late = performance.now() - this.#lastSampleAt - WINDOW_MS;
    return Math.max(this.#previousMaxMs, this.#histogram.max / 1e6, late);
  }

  get reason(): OverloadReason {
    if (this.#limits.loopDelayMs > 0 && this.loopDelayMs > this.#limits.loopDelayMs) return 'event_loop';
    if (this.#heapOver) return 'heap';
    return null;
  }

  get overloaded(): boolean {
    return this.reason !== null;
  }

  /** Throws 503 `overloaded` with Retry-After while the process is over a limit. */
  check(): void {
    const reason = this.reason;
    if (reason === null) return;
    const what = reason === 'heap' ? `heap use is past OVERLOAD_HEAP_PERCENT (${this.#limits.heapPercent}%)` : `the event loop is stalled past OVERLOAD_LOOP_DELAY_MS (${this.#limits.loopDelayMs} ms)`;
    throw new Refusal(503, 'overloaded', `this server is overloaded (${what}); retry later or elsewhere`, { retryAfterSeconds: RETRY_AFTER_SECONDS });
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#histogram.disable();
  }

  #sample(): void {
    this.#previousMaxMs = Math.max(this.#histogram.max / 1e6, performance.now() - this.#lastSampleAt - WINDOW_MS);
    this.#histogram.reset();
    this.#lastSampleAt = performance.now();
    if (this.#limits.heapPercent > 0) this.#heapOver = (getHeapStatistics().used_heap_size / this.#heapLimit) * 100 > this.#limits.heapPercent;
  }
}
