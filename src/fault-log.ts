import type { Logger } from 'pino';

/**
 * The kinds of backend fault, as logged and counted in booksai_backend_faults_total{kind}.
 * `redis_full`: a commit refused by a Redis out of memory; `redis_not_replicated`: a commit fewer
 * replicas than REDIS_WAIT_REPLICAS acknowledged in time; `generation_retry`: a backend call of
 * a generation retried.
 */
export const FAULT_KINDS = [
  'redis_unavailable',
  'redis_full',
  'redis_not_replicated',
  'redis_connection',
  'database_unavailable',
  'database_fallback',
  'database_queue',
  'snapshot_failed',
  'topic_read',
  'generation_retry',
  'run_lease_renewal',
  'text_sink',
  'timeline_failed',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

/** One line per fault kind per this long, however many times the fault happens meanwhile. */
export const FAULT_LOG_INTERVAL_MS = 10_000;

interface Window {
  suppressed: number;
  message: string;
  detail: Record<string, unknown>;
  timer: NodeJS.Timeout;
}

const byLogger = new WeakMap<Logger, FaultLog>();

/** Fault lines kept for the operator view (GET /api/admin/status), newest last. */
export const RECENT_FAULT_LINES = 50;

/** One line the fault log wrote: `count`, for a line that sums up the repeats of an interval. */
export interface FaultLine {
  at: number;
  kind: FaultKind;
  message: string;
  count?: number;
  detail: Record<string, unknown>;
}

/**
 * Backend faults (Redis or Postgres not answering, Redis full), logged so that logs stay
 * readable during an outage: the first occurrence of a kind is logged at once, the next ones
 * in the same FAULT_LOG_INTERVAL_MS are counted and logged as one line with their count when
 * the interval ends. Every occurrence is counted for /metrics.
 */
export class FaultLog {
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #windows = new Map<FaultKind, Window>();
  readonly #totals = new Map<FaultKind, number>();
  readonly #recent: FaultLine[] = [];

  constructor(log: Logger, intervalMs = FAULT_LOG_INTERVAL_MS) {
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  /**
   * The fault log of `log`: one per logger, so every part that logs through it (broker, store,
   * routes) shares the limits and the counts without another dependency to pass around.
   */
  static of(log: Logger): FaultLog {
    let faults = byLogger.get(log);
    if (!faults) byLogger.set(log, (faults = new FaultLog(log)));
    return faults;
  }

  /** Records one occurrence of `kind`; `detail` must hold no secret (it is logged). */
  report(kind: FaultKind, message: string, detail: Record<string, unknown> = {}): void {
    this.#totals.set(kind, (this.#totals.get(kind) ?? 0) + 1);
    const window = this.#windows.get(kind);
    if (window) {
      window.suppressed++;
      window.message = message;
      window.detail = detail;
      return;
    }
    this.#log.warn({ fault: kind, ...detail }, message);
    this.#keep({ at: Date.now(), kind, message, detail });
    this.#open(kind, message, detail);
  }

  /** Occurrences per kind since start. */
  totals(): ReadonlyMap<FaultKind, number> {
    return this.#totals;
  }

  /** The last RECENT_FAULT_LINES lines logged, oldest first. */
  recent(): readonly FaultLine[] {
    return this.#recent;
  }

  #keep(line: FaultLine): void {
    this.#recent.push(line);
    if (this.#recent.length > RECENT_FAULT_LINES) this.#recent.shift();
  }

  #open(kind: FaultKind, message: string, detail: Record<string, unknown>): void {
    const timer = setTimeout(() => this.#close(kind), this.#intervalMs);
    timer.unref();
    this.#windows.set(kind, { suppressed: 0, message, detail, timer });
  }

  /** Ends a kind's interval: its count, if any, in one line; a fault that goes on opens the next. */
  #close(kind: FaultKind): void {
    const window = this.#windows.get(kind);
    this.#windows.delete(kind);
    if (!window || window.suppressed === 0) return;
    const seconds = this.#intervalMs / 1000;
    this.#log.warn({ fault: kind, count: window.suppressed, ...window.detail }, `${window.message} (${window.suppressed} more in the last ${seconds} s)`);
    this.#keep({ at: Date.now(), kind, message: window.message, count: window.suppressed, detail: window.detail });
    this.#open(kind, window.message, window.detail);
  }
}
