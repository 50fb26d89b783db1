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
 * The latest state of a book: the broker first; when the broker holds nothing or is down, the
 * newer of the database's snapshot and `lastKnown` (what this process last received), so a
 * poller never sees a book go back while Redis is away. Throws ServiceUnavailableError when
 * nothing can answer.
 */
export function latestReader(
  broker: Broker,
  brokerSource: Source,
  store: Store,
  lastKnown: (bookId: string) => BookProgress | null,
  log: Logger,
): ReadLatest {
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
    return null;
  };
}
