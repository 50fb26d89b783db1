import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { BrokerUnavailableError } from '../broker/broker.js';
import { isDatabaseUnavailable, rootMessage } from '../store/failures.js';

const FIRST_BACKOFF_MS = 100;
export const MAX_BACKOFF_MS = 5_000;

/** Redis or Postgres unreachable: retried, never a reason to fail a book. */
export function isInfrastructureError(error: unknown): boolean {
  return error instanceof BrokerUnavailableError || isDatabaseUnavailable(error);
}

/** Exponential backoff with jitter, so many waiting books do not retry in lockstep. */
export function backoffMs(attempt: number): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** attempt);
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/**
 * Runs `task` until it succeeds, waiting with backoff after each infrastructure error.
 * Any other error is thrown at once; so is an abort of `signal`.
 */
export async function retryInfrastructure<T>(
  task: () => Promise<T>,
  options: { what: string; log: Logger; signal?: AbortSignal },
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await task();
    } catch (error) {
      if (!isInfrastructureError(error)) throw error;
      const wait = backoffMs(attempt);
      options.log.warn({ err: rootMessage(error), attempt, retryInMs: wait }, `${options.what} failed; retrying`);
      await delay(wait, undefined, { signal: options.signal });
    }
  }
}
