import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import { BrokerUnavailableError } from '../broker/broker.js';
import type { BookProgress } from '../progress/schema.js';
import type { Store } from '../store/store.js';
import { ServiceUnavailableError } from './errors.js';

export type Source = 'redis' | 'memory' | 'database';

export interface Found {
  state: BookProgress;
  source: Source;
}

export type ReadLatest = (bookId: string) => Promise<Found | null>;

/**
 * The latest state of a book: the broker first; the database only when the broker holds
 * nothing or is down. Throws ServiceUnavailableError when neither can answer.
 */
export function latestReader(broker: Broker, brokerSource: Source, store: Store, log: Logger): ReadLatest {
  return async (bookId) => {
    let brokerDown = false;
    try {
      const state = await broker.get(bookId);
      if (state) return { state, source: brokerSource };
    } catch (error) {
      if (!(error instanceof BrokerUnavailableError)) throw error;
      brokerDown = true;
    }
    let state: BookProgress | null;
    try {
      state = await store.getProgress(bookId);
    } catch (error) {
      log.warn({ err: (error as Error).message, bookId }, 'database fallback read failed');
      const what = brokerDown ? 'redis and the database are' : 'the database is';
      throw new ServiceUnavailableError(`${what} unavailable; retry later`);
    }
    if (state) return { state, source: 'database' };
    // With Redis down, "not in the database" does not mean "no such book": say we cannot tell.
    if (brokerDown) throw new ServiceUnavailableError('redis is unavailable and the database has no state for this book yet; retry later');
    return null;
  };
}
