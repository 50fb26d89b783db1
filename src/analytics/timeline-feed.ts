import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import { FaultLog } from '../fault-log.js';
import type { BookProgress } from '../progress/schema.js';
import { rootMessage } from '../store/failures.js';
import type { RecordedBatch, TimelineRecorder } from './recorder.js';

/** How often the states gathered are folded and written, at most (the snapshot interval when shorter). */
export const DEFAULT_TIMELINE_FLUSH_MS = 2_000;
/**
 * States held for the next batch at most (a few tens of MB). Past it the batch keeps each
 * book's newest state only: the fold records what those show, as across any gap (`exact: false`).
 */
export const MAX_PENDING_STATES = 100_000;
const MAX_RETRY_MS = 30_000;

export interface TimelineFeedOptions {
  recorder: Pick<TimelineRecorder, 'record' | 'statements'>;
  log: Logger;
  intervalMs?: number;
  /** Called with each batch written (the Prometheus histograms). */
  onRecorded?: (batch: RecordedBatch) => void;
}

export interface TimelineFeedStats {
  batches: number;
  states: number;
  failures: number;
  gaps: number;
  pending: number;
}

/**
 * Records the run timelines of every book, whoever publishes it: the committed states arrive on
 * the broker's every-book feed (`watch`) and from the snapshot rounds and first/terminal writes
 * (`offer`, which fills what the feed missed while Redis was away), and are folded and written
 * every interval in one batch (TimelineRecorder: three statements, however many states). A
 * batch the database refused stays for the next attempt, with what arrived meanwhile: the fold
 * is pure and its writes idempotent, so a retry writes each span once. Nothing is written on
 * the publish path.
 */
export class TimelineFeed {
  readonly stats: TimelineFeedStats = { batches: 0, states: 0, failures: 0, gaps: 0, pending: 0 };
  /** Called with each batch written (the Prometheus histograms). */
  onRecorded: ((batch: RecordedBatch) => void) | null;
  readonly #options: TimelineFeedOptions;
  #pending: BookProgress[] = [];
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> = Promise.resolve();
  #unsubscribe: (() => void) | null = null;
  #retryMs: number;
  #stopped = false;

  constructor(options: TimelineFeedOptions) {
    this.#options = options;
    this.onRecorded = options.onRecorded ?? null;
    this.#retryMs = this.#interval;
  }

  /** Database statements sent so far. */
  get statements(): number {
    return this.#options.recorder.statements;
  }

  get #interval(): number {
    return this.#options.intervalMs ?? DEFAULT_TIMELINE_FLUSH_MS;
  }

  /** Gathers every commit `broker` carries, from any publisher, until stop(). */
  async watch(broker: Pick<Broker, 'subscribeAll'>): Promise<void> {
    this.#unsubscribe = await broker.subscribeAll(
      (state) => this.offer([state]),
      () => {
        // Missed commits: the snapshot rounds offer the books' newest states, recorded as inexact.
        this.stats.gaps++;
      },
    );
  }

  /** Adds committed states to the next batch (duplicates and old versions are harmless). */
  offer(states: readonly BookProgress[]): void {
    if (this.#stopped || states.length === 0) return;
    this.#pending.push(...states);
    if (this.#pending.length > MAX_PENDING_STATES) this.#pending = newestPerBook(this.#pending);
    this.stats.pending = this.#pending.length;
  }

  start(): void {
    this.#schedule(this.#interval);
  }

  /** Writes what is gathered now (after the batch under way). Throws when the database failed; the states stay. */
  flush(): Promise<void> {
    const run = this.#running.then(() => this.#write());
    this.#running = run.catch(() => {});
    return run;
  }

  /** Stops gathering and writes the last batch (failures logged). */
  async stop(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.flush().catch((error: unknown) => {
      this.#options.log.warn({ err: rootMessage(error), states: this.#pending.length }, 'the last timeline batch failed; its runs miss those states');
    });
  }

  async #write(): Promise<void> {
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    try {
      const recorded = await this.#options.recorder.record(batch);
      this.stats.batches++;
      this.stats.states += batch.length;
      this.onRecorded?.(recorded);
    } catch (error) {
      this.stats.failures++;
      this.#pending = batch.concat(this.#pending);
      if (this.#pending.length > MAX_PENDING_STATES) this.#pending = newestPerBook(this.#pending);
      throw error;
    } finally {
      this.stats.pending = this.#pending.length;
    }
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.flush().then(
        () => {
          this.#retryMs = this.#interval;
          this.#schedule(this.#interval);
        },
        (error: unknown) => {
          FaultLog.of(this.#options.log).report('timeline_failed', 'writing run timelines failed; retrying', { err: rootMessage(error), retryInMs: this.#retryMs });
          this.#schedule(this.#retryMs);
          this.#retryMs = Math.min(MAX_RETRY_MS, this.#retryMs * 2);
        },
      );
    }, delayMs);
    this.#timer.unref();
  }
}

function newestPerBook(states: readonly BookProgress[]): BookProgress[] {
  const newest = new Map<string, BookProgress>();
  for (const state of states) {
    const held = newest.get(state.bookId);
    if (held === undefined || state.version > held.version) newest.set(state.bookId, state);
  }
  return [...newest.values()];
}
