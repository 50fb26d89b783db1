import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import { BrokerUnavailableError } from '../broker/broker.js';
import { FaultLog } from '../fault-log.js';
import type { BookProgress } from '../progress/schema.js';
import type { ProgressStore } from '../store/progress.js';
import { ServiceUnavailableError } from './errors.js';

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

export type ReadLatest = (bookId: string) => Promise<Found | null>;

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
 * expired (24 h after its last update), or an unknown id. A client polling such a book every 3 s
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

/**
 * The latest state of a book: the broker first; when the broker holds nothing or is down, the
 * newer of the database's snapshot and `lastKnown` (what this process last received), so a
 * poller never sees a book go back while Redis is away. While Redis answers, Postgres's answer
 * is used for DATABASE_ANSWER_TTL_MS. Throws ServiceUnavailableError when nothing can answer.
 */
export function latestReader(
  broker: Broker,
  brokerSource: Source,
  store: ProgressStore,
  lastKnown: (bookId: string) => BookProgress | null,
  log: Logger,
): ReadLatest {
  const databaseAnswers = new DatabaseAnswers();
  return async (bookId) => {
    let brokerDown = false;
    try {
      const state = await broker.get(bookId);
      if (state) return { state, source: brokerSource };
    } catch (error) {
      if (!(error instanceof BrokerUnavailableError)) throw error;
      brokerDown = true;
    }
    const known = lastKnown(bookId);
    // While Redis is down, Postgres is where states land: read it every time.
    let stored = brokerDown ? undefined : databaseAnswers.get(bookId, Date.now());
    if (stored === undefined) {
      try {
        stored = await store.getProgress(bookId);
      } catch (error) {
        FaultLog.of(log).report('database_fallback', 'database fallback read failed', { err: (error as Error).message });
        if (known) return { state: known, source: 'cache' };
        const what = brokerDown ? 'redis and the database are' : 'the database is';
        throw new ServiceUnavailableError(`${what} unavailable; retry later`);
      }
      if (!brokerDown) databaseAnswers.set(bookId, stored, Date.now());
    }
    if (known && (!stored || known.version > stored.version)) return { state: known, source: 'cache' };
    if (stored) return { state: stored, source: 'database' };
    // With Redis down, "not in the database" does not mean "no such book": say we cannot tell.
    if (brokerDown) throw new ServiceUnavailableError('redis is unavailable and the database has no state for this book yet; retry later');
    return null;
  };
}
