import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { jitteredBackoff } from '../backoff.js';
import { BrokerUnavailableError } from '../broker/broker.js';
import { FaultLog } from '../fault-log.js';
import { FencedError } from '../progress/tracker.js';
import { isDatabaseUnavailable, rootMessage } from '../store/failures.js';
import { GenerationError } from './generator.js';
import type { RetryHint } from './generator.js';

const FIRST_BACKOFF_MS = 100;
export const MAX_BACKOFF_MS = 5_000;
/** The longest Retry-After honoured: a service asking for more gets a try after this long (and may refuse again). */
export const MAX_RETRY_AFTER_MS = 120_000;

/** Redis or Postgres unreachable: retried, never a reason to fail a book. */
export function isInfrastructureError(error: unknown): boolean {
  return error instanceof BrokerUnavailableError || isDatabaseUnavailable(error);
}

/** Exponential backoff with jitter, so many waiting books do not retry in lockstep. */
export function backoffMs(attempt: number): number {
  return jitteredBackoff(attempt, FIRST_BACKOFF_MS, MAX_BACKOFF_MS);
}

/**
 * Runs `task` until it succeeds, waiting with backoff after each infrastructure error.
 * Any other error is thrown at once; so is an abort of `signal`. Each failed attempt is a
 * `generation_retry` fault (FaultLog): every book retries during an outage, and the log gets
 * one line per interval with the count, not one per attempt per book.
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
      FaultLog.of(options.log).report('generation_retry', `${options.what} failed; retrying`, { err: rootMessage(error) });
      await delay(wait, undefined, { signal: options.signal });
    }
  }
}

/**
 * Runs one generator call, retrying its failures `retries` times with backoff and jitter (an AI
 * API fails transiently: 429, 5xx, timeouts) before throwing GenerationError. An error with
 * `retryable: false` is thrown at once; one with `retryAfterMs` (RetryHint) is retried no
 * sooner than that (up to MAX_RETRY_AFTER_MS). An abort of `signal` ends the wait for the call at
 * once (its result is dropped) and is thrown as is.
 */
export async function retryGeneration<T>(
  work: () => Promise<T>,
  options: { what: string; retries: number; log: Logger; signal?: AbortSignal; onRetry?: () => void },
): Promise<T> {
  const { signal } = options;
  for (let attempt = 0; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await abortable(work(), signal);
    } catch (error) {
      // A write refused by the run's fence is no failure of the generator: the run is over.
      if (signal?.aborted || error instanceof FencedError) throw error;
      const message = (error as Error).message || 'generation failed';
      const hint = error as RetryHint;
      if (attempt >= options.retries || hint.retryable === false) throw new GenerationError(message, { cause: error });
      const asked = typeof hint.retryAfterMs === 'number' && hint.retryAfterMs > 0 ? Math.min(hint.retryAfterMs, MAX_RETRY_AFTER_MS) : 0;
      const wait = Math.max(backoffMs(attempt), asked);
      options.onRetry?.();
      options.log.warn({ err: message, attempt: attempt + 1, of: options.retries, retryInMs: wait }, `${options.what} failed; retrying`);
      await delay(wait, undefined, { signal });
    }
  }
}

/** `promise`, or the abort of `signal` if that comes first; a later rejection of `promise` is dropped. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  promise.catch(() => {});
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
