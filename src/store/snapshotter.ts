import type { Logger } from 'pino';
import type { Broker, DirtyClaims } from '../broker/broker.js';
import { FaultLog } from '../fault-log.js';
import type { BookProgress } from '../progress/schema.js';
import { UPSERT_CHUNK_ROWS } from './progress.js';
import type { ProgressStore } from './progress.js';
import { isDatabaseUnavailable, rootMessage } from './failures.js';

const MIN_RETRY_MS = 500;
/** States read (and validated) per Redis round trip: few enough not to hold the event loop long (docs/performance.md, "Snapshot rounds in slices"). */
const READ_BATCH = 100;
const MIN_LEASE_MS = 5_000;
/**
 * States kept in memory for the database at most. Past it a state is not queued: it is in the
 * broker's dirty set like every committed state, so the first round after the database answers
 * writes it anyway; the queue only writes it sooner.
 */
export const MAX_WAITING_FOR_DATABASE = 10_000;

export interface SnapshotterOptions {
  broker: DirtyClaims & Pick<Broker, 'getMany'>;
  store: ProgressStore;
  intervalMs: number;
  /** Unique per process: who holds the snapshot claim. */
  owner: string;
  log: Logger;
  now?: () => number;
  /** Called with the states each write put in the database (the run timelines fill their gaps from them). */
  onWritten?: (states: readonly BookProgress[]) => void;
}

export interface SnapshotStats {
  snapshots: number;
  rowsWritten: number;
  failures: number;
  waitingForDatabase: number;
}

/**
 * A round as the operator view shows it: when it ended, how long it took, and what it did
 * (`written`: rows written; `skipped`: another process held the claim or took the round).
 */
export interface SnapshotRound {
  endedAt: number;
  durationMs: number;
  outcome: 'written' | 'skipped' | 'failed';
  rows: number;
  error?: string;
}

/**
 * Writes the books that changed to Postgres: once per interval cluster-wide (rounds aligned
 * to the interval, claimed in the broker), in one batched upsert, version-guarded. Terminal
 * states are written at once. While Postgres is down nothing is dropped: claimed books go
 * back to the dirty set and terminal states wait in memory, retried with backoff. Each statement
 * is bounded by the store's deadline, so a round blocked by a lock ends there, its books back in
 * the dirty set, and rounds slower than the interval never overlap: the next is scheduled when
 * one ends.
 */
export class Snapshotter {
  readonly stats: SnapshotStats = { snapshots: 0, rowsWritten: 0, failures: 0, waitingForDatabase: 0 };
  readonly #options: SnapshotterOptions;
  readonly #now: () => number;
  readonly #leaseMs: number;
  readonly #waitingForDatabase = new Map<string, BookProgress>();
  #timer: NodeJS.Timeout | null = null;
  #retryMs = MIN_RETRY_MS;
  #running: Promise<void> = Promise.resolve();
  /** A round (or retry) in progress: the next starts only after it, so rounds never overlap. */
  #ticking = false;
  #stopped = false;
  #lastRound: SnapshotRound | null = null;
  #lastWrittenAt: number | null = null;

  constructor(options: SnapshotterOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#leaseMs = Math.max(MIN_LEASE_MS, 2 * options.intervalMs);
  }

  /** The last scheduled round (or retry) this process ran; null before the first. */
  get lastRound(): SnapshotRound | null {
    return this.#lastRound;
  }

  /** When a round of this process last wrote its claim (ms since the epoch); null: none yet. */
  get lastWrittenAt(): number | null {
    return this.#lastWrittenAt;
  }

  /** The interval between rounds (SNAPSHOT_INTERVAL_MS). */
  get intervalMs(): number {
    return this.#options.intervalMs;
  }

  start(): void {
    this.#schedule(this.#untilNextRound());
  }

  /**
   * Takes one snapshot of every dirty book now (round null: outside the schedule). Resolves
   * to the rows written, or null when another process holds the claim or the round was taken.
   * Throws when the database or broker failed; the claimed books are back in the dirty set then.
   */
  async snapshot(round: number | null = null): Promise<number | null> {
    const { broker, store, owner } = this.#options;
    await this.#flushUrgent();
    let claimed = false;
    let written = 0;
    const pending: string[] = [];
    // Chunk by chunk, so a large snapshot never holds the event loop (or Redis) for long.
    const write = async (books: string[]) => {
      const states: BookProgress[] = [];
      for (let j = 0; j < books.length; j += READ_BATCH) {
        for (const state of await broker.getMany(books.slice(j, j + READ_BATCH))) if (state !== null) states.push(state);
      }
      written += await store.saveProgress(states);
      this.#options.onWritten?.(states);
    };
    try {
      // On a cluster one claim holds some of the round's partitions: the next claims take more,
      // here or in another process, until none is left (on one Redis the second claim is null).
      // Books of several claims fill one chunk, so a round still writes one upsert per chunk.
      for (;;) {
        const books = await broker.claimDirty(owner, this.#leaseMs, round);
        if (books === null) break;
        claimed = true;
        pending.push(...books);
        while (pending.length >= UPSERT_CHUNK_ROWS) await write(pending.splice(0, UPSERT_CHUNK_ROWS));
        if (round === null) break;
      }
      if (pending.length > 0) await write(pending);
    } catch (error) {
      if (claimed) {
        await broker.settleClaim(owner, false).catch(() => {
          // Broker down too: the lease runs out and the next claim takes the books back.
        });
      }
      throw error;
    }
    if (!claimed) return null;
    await broker.settleClaim(owner, true);
    this.stats.snapshots++;
    this.stats.rowsWritten += written;
    return written;
  }

  /**
   * Writes a state that must not wait for the next round (a run's first, a terminal one).
   * Resolves once it is written, or queued for retry while the database is down (then retried
   * until written), or refused by the database (logged; retrying could not help).
   */
  async persistNow(state: BookProgress): Promise<'written' | 'queued' | 'refused'> {
    if (!this.#options.store.answering) {
      // The last call found the database unreachable: the caller need not wait to learn it again.
      this.#queueUrgent(state);
      this.#scheduleRetry();
      return 'queued';
    }
    try {
      await this.#options.store.saveProgress([state]);
      this.#options.onWritten?.([state]);
      return 'written';
    } catch (error) {
      // Only an outage is worth waiting for; a state Postgres refuses would block every later write.
      if (!isDatabaseUnavailable(error)) {
        this.#options.log.error({ err: rootMessage(error), bookId: state.bookId }, 'the database refused a state; not retried');
        return 'refused';
      }
      this.#queueUrgent(state);
      FaultLog.of(this.#options.log).report('database_queue', 'states queued until the database answers', { err: rootMessage(error), waiting: this.#waitingForDatabase.size });
      this.#scheduleRetry();
      return 'queued';
    }
  }

  /** Stops the schedule and takes a last snapshot (once; failures are logged, not thrown). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
    try {
      await this.snapshot(null);
    } catch (error) {
      this.#options.log.error({ err: (error as Error).message, waitingForDatabase: this.#waitingForDatabase.size }, 'last snapshot failed; dirty books stay in the broker');
    }
  }

  #schedule(delayMs: number, retry = false): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      // The round in progress schedules the next when it ends.
      if (this.#ticking) return;
      this.#running = this.#tick(retry ? null : this.#round());
    }, delayMs);
    this.#timer.unref();
  }

  async #tick(round: number | null): Promise<void> {
    this.#ticking = true;
    const startedAt = this.#now();
    try {
      const rows = await this.snapshot(round);
      const endedAt = this.#now();
      this.#lastRound = { endedAt, durationMs: endedAt - startedAt, outcome: rows === null ? 'skipped' : 'written', rows: rows ?? 0 };
      if (rows !== null) this.#lastWrittenAt = endedAt;
      this.#retryMs = MIN_RETRY_MS;
      // A state queued while this round ran must not wait for the next round.
      if (this.#waitingForDatabase.size > 0) this.#scheduleRetry();
      else this.#schedule(this.#untilNextRound());
    } catch (error) {
      this.stats.failures++;
      const endedAt = this.#now();
      this.#lastRound = { endedAt, durationMs: endedAt - startedAt, outcome: 'failed', rows: 0, error: rootMessage(error) };
      FaultLog.of(this.#options.log).report('snapshot_failed', 'snapshot failed; retrying', { err: rootMessage(error), retryInMs: this.#retryMs });
      this.#scheduleRetry();
    } finally {
      this.#ticking = false;
    }
  }

  #scheduleRetry(): void {
    const delay = this.#retryMs;
    this.#retryMs = Math.min(this.#retryMs * 2, this.#options.intervalMs);
    this.#schedule(delay, true);
  }

  async #flushUrgent(): Promise<void> {
    if (this.#waitingForDatabase.size === 0) return;
    const states = [...this.#waitingForDatabase.values()];
    await this.#options.store.saveProgress(states);
    this.#options.onWritten?.(states);
    for (const state of states) {
      if (this.#waitingForDatabase.get(state.bookId) === state) this.#waitingForDatabase.delete(state.bookId);
    }
    this.stats.waitingForDatabase = this.#waitingForDatabase.size;
  }

  #queueUrgent(state: BookProgress): void {
    const queued = this.#waitingForDatabase.get(state.bookId);
    if (!queued && this.#waitingForDatabase.size >= MAX_WAITING_FOR_DATABASE) return;
    if (!queued || state.version > queued.version) this.#waitingForDatabase.set(state.bookId, state);
    this.stats.waitingForDatabase = this.#waitingForDatabase.size;
  }

  #round(): number {
    return Math.floor(this.#now() / this.#options.intervalMs);
  }

  #untilNextRound(): number {
    const interval = this.#options.intervalMs;
    return interval - (this.#now() % interval) + Math.floor(Math.random() * Math.min(50, interval / 10));
  }
}
