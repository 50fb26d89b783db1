import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import { BrokerUnavailableError } from '../broker/broker.js';
import type { BookProgress } from '../progress/schema.js';
import type { Store } from '../store/store.js';
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
  /**
   * The broker answered: it holds this state, or none (its copy expired), and then the database's
   * is the latest. False when the broker was down.
   */
  brokerAnswered: boolean;
}

export type ReadLatest = (bookId: string) => Promise<Found | null>;

/**
 * How long a book that neither Redis nor Postgres holds is taken as absent without asking Postgres
 * again. Redis is still asked at every read, and a new book's first state always reaches Redis, so
 * a book published meanwhile is seen at once.
 */
export const ABSENT_BOOK_TTL_MS = 10_000;
/** Absent books remembered at most; the oldest is forgotten first. */
const MAX_ABSENT_BOOKS = 10_000;

/**
 * Books found nowhere, recently. A client polling an unknown id every 3 s would otherwise cost
 * Postgres a read per poll, the load this server exists to take off it.
 */
class AbsentBooks {
  readonly #until = new Map<string, number>();

  has(bookId: string, now: number): boolean {
    const until = this.#until.get(bookId);
    if (until === undefined) return false;
    if (until > now) return true;
    this.#until.delete(bookId);
    return false;
  }

  add(bookId: string, now: number): void {
    this.#until.set(bookId, now + ABSENT_BOOK_TTL_MS);
    if (this.#until.size > MAX_ABSENT_BOOKS) this.#until.delete(this.#until.keys().next().value as string);
  }
}

/**
 * The latest state of a book: the broker first; when the broker holds nothing or is down, the
 * newer of the database's snapshot and `lastKnown` (what this process last received), so a
 * poller never sees a book go back while Redis is away. A book found nowhere is not looked for in
 * Postgres again for ABSENT_BOOK_TTL_MS. Throws ServiceUnavailableError when nothing can answer.
 */
export function latestReader(
  broker: Broker,
  brokerSource: Source,
  store: Store,
  lastKnown: (bookId: string) => BookProgress | null,
  log: Logger,
): ReadLatest {
  const absent = new AbsentBooks();
  return async (bookId) => {
    let brokerDown = false;
    try {
      const state = await broker.get(bookId);
      if (state) return { state, source: brokerSource, brokerAnswered: true };
    } catch (error) {
      if (!(error instanceof BrokerUnavailableError)) throw error;
      brokerDown = true;
    }
    const known = lastKnown(bookId);
    if (!brokerDown && known === null && absent.has(bookId, Date.now())) return null;
    let stored: BookProgress | null;
    try {
      stored = await store.getProgress(bookId);
    } catch (error) {
      log.warn({ err: (error as Error).message, bookId }, 'database fallback read failed');
      if (known) return { state: known, source: 'cache', brokerAnswered: !brokerDown };
      const what = brokerDown ? 'redis and the database are' : 'the database is';
      throw new ServiceUnavailableError(`${what} unavailable; retry later`);
    }
    if (known && (!stored || known.version > stored.version)) return { state: known, source: 'cache', brokerAnswered: !brokerDown };
    if (stored) return { state: stored, source: 'database', brokerAnswered: !brokerDown };
    // With Redis down, "not in the database" does not mean "no such book": say we cannot tell.
    if (brokerDown) throw new ServiceUnavailableError('redis is unavailable and the database has no state for this book yet; retry later');
    absent.add(bookId, Date.now());
    return null;
  };
}
