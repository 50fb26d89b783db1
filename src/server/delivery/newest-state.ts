import type { Logger } from 'pino';
import type { Broker } from '../../broker/broker.js';
import { BrokerUnavailableError } from '../../broker/broker.js';
import { FaultLog } from '../../fault-log.js';
import type { BookProgress } from '../../progress/schema.js';
import { Refusal } from '../../refusal.js';
import type { BookRecord } from '../../store/books.js';
import { isDatabaseUnavailable } from '../../store/failures.js';
import type { ProgressStore } from '../../store/progress.js';

/**
 * Where an answer came from: `redis` or `memory` (the broker), `database` (Postgres), or `cache`
 * (the last state this process received, served while the broker cannot answer because it is
 * newer than the database's).
 */
export type Source = 'redis' | 'memory' | 'database' | 'cache';

export interface Found {
  state: BookProgress;
  source: Source;
}

/** A reader's newest state of a book and where it came from; null for a book nobody holds. */
export type FindNewest = (bookId: string) => Promise<Found | null>;

/**
 * How long Postgres's answer about a book Redis does not hold (its state, or none) is used again
 * without asking Postgres. Redis is still asked at every read, and every new state reaches Redis
 * first, so a book published meanwhile is seen at once. What the answer can miss is a state that
 * reaches Postgres without Redis: after Redis lost it, a queued write that lands later.
 */
const DATABASE_ANSWER_TTL_MS = 10_000;
/** Answers kept at most; the oldest is dropped first. */
const MAX_DATABASE_ANSWERS = 10_000;

/**
 * Postgres's recent answers for books Redis did not hold: a finished book whose Redis state
 * expired (TERMINAL_TTL_SECONDS after it finished, PROGRESS_TTL_SECONDS after a running book's last update), or an unknown id. A client polling such a book every 3 s
 * would otherwise cost Postgres a read per poll, the load this server exists to take off it.
 */
class DatabaseAnswers {
  readonly #answers = new Map<string, { state: BookProgress | null; until: number }>();

  /** The answer, or undefined when there is none from the last DATABASE_ANSWER_TTL_MS. */
  get(bookId: string, now: number): BookProgress | null | undefined {
    const answer = this.#answers.get(bookId);
    if (answer === undefined) return undefined;
    if (answer.until > now) return answer.state;
    this.#answers.delete(bookId);
    return undefined;
  }

  set(bookId: string, state: BookProgress | null, now: number): void {
    this.#answers.set(bookId, { state, until: now + DATABASE_ANSWER_TTL_MS });
    if (this.#answers.size > MAX_DATABASE_ANSWERS) this.#answers.delete(this.#answers.keys().next().value as string);
  }
}

export interface NewestStatesOptions {
  broker: Broker;
  /** What the broker is, for `Found.source`. */
  source: 'redis' | 'memory';
  store: ProgressStore;
  /** The newest state this process received of a book (the Hub's), or null. */
  lastKnown: (bookId: string) => BookProgress | null;
  log: Logger;
}

/**
 * The one owner of "the newest state of a book". The broker holds it while a book is live, the
 * database holds the last snapshot; each read below says which it trusts when one cannot answer.
 */
export class NewestStates {
  readonly #broker: Broker;
  readonly #source: 'redis' | 'memory';
  readonly #store: ProgressStore;
  readonly #lastKnown: (bookId: string) => BookProgress | null;
  readonly #log: Logger;
  readonly #databaseAnswers = new DatabaseAnswers();

  constructor(options: NewestStatesOptions) {
    this.#broker = options.broker;
    this.#source = options.source;
    this.#store = options.store;
    this.#lastKnown = options.lastKnown;
    this.#log = options.log;
  }

  /**
   * For readers (polls, a new topic): the broker's state; when the broker holds nothing or is
   * down, the newer of the database's snapshot and `lastKnown`, so a poller never sees a book go
   * back while Redis is away. While Redis answers, Postgres's answer is used for
   * DATABASE_ANSWER_TTL_MS. Throws a 503 `service_unavailable` Refusal when nothing can answer.
   */
  readonly find: FindNewest = async (bookId) => {
    let brokerDown = false;
    try {
      const state = await this.#broker.get(bookId);
      if (state) return { state, source: this.#source };
    } catch (error) {
      if (!(error instanceof BrokerUnavailableError)) throw error;
      brokerDown = true;
    }
    const known = this.#lastKnown(bookId);
    // While Redis is down, Postgres is where states land: read it every time.
    let stored = brokerDown ? undefined : this.#databaseAnswers.get(bookId, Date.now());
    if (stored === undefined) {
      try {
        stored = await this.#store.getProgress(bookId);
      } catch (error) {
        FaultLog.of(this.#log).report('database_fallback', 'database fallback read failed', { err: (error as Error).message });
        if (known) return { state: known, source: 'cache' };
        const what = brokerDown ? 'redis and the database are' : 'the database is';
        throw unavailable(`${what} unavailable; retry later`);
      }
      if (!brokerDown) this.#databaseAnswers.set(bookId, stored, Date.now());
    }
    if (known && (!stored || known.version > stored.version)) return { state: known, source: 'cache' };
    if (stored) return { state: stored, source: 'database' };
    // With Redis down, "not in the database" does not mean "no such book": say we cannot tell.
    if (brokerDown) throw unavailable('redis is unavailable and the database has no state for this book yet; retry later');
    return null;
  };

  /**
   * For the tracker, about a book the broker lacks: the database's state, or null when the
   * database cannot answer either. The book then starts from what this process knows: its first
   * state is committed to Redis and queued for the database, as persistNow does.
   */
  readonly stored = (bookId: string): Promise<BookProgress | null> =>
    this.#store.getProgress(bookId).catch((error: unknown) => (isDatabaseUnavailable(error) ? null : Promise.reject(error)));

  /** For the orchestrator: the broker's state, else the database's; a backend fault is thrown, for the run to retry. */
  readonly committed = async (bookId: string): Promise<BookProgress | null> => (await this.#broker.get(bookId)) ?? (await this.#store.getProgress(bookId));

  /**
   * For lists of book rows: per row, the broker's state when it is at least as new as the row's
   * snapshot (and `readable` accepts it), else the snapshot. A broker that cannot answer leaves
   * the snapshots.
   */
  async ofRows(rows: readonly BookRecord[], readable: (state: BookProgress) => boolean = () => true): Promise<Array<BookProgress | null>> {
    const live = await this.#brokerStates(rows.map((row) => row.id));
    return rows.map((row, i) => {
      const state = live[i] ?? null;
      return state !== null && readable(state) && state.version >= row.version ? state : row.progress;
    });
  }

  async #brokerStates(bookIds: string[]): Promise<Array<BookProgress | null>> {
    try {
      return await this.#broker.getMany(bookIds);
    } catch {
      return bookIds.map(() => null);
    }
  }
}

function unavailable(message: string): Refusal {
  return new Refusal(503, 'service_unavailable', message);
}
