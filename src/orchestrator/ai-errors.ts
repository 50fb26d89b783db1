import { APIConnectionError, APIError, APIUserAbortError } from 'openai';
import type { RetryHint } from './generator.js';

/**
 * A failed call to the AI service, classified for the retry policy (retryGeneration): a refusal
 * of the request itself (4xx but 408, 409 and 429) fails the book at once, since the same
 * request would be refused again; overload, outages and cut streams are retried, no sooner
 * than the service's Retry-After.
 */
export class AiServiceError extends Error implements RetryHint {
  override readonly name = 'AiServiceError';
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs: number | undefined,
    /** The HTTP status, when the service answered with one. */
    readonly status: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Statuses that say "try again" (as the OpenAI SDK's own policy has it): timeout, lock conflict, rate limit, server errors. */
function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/** `error` from the openai client as an AiServiceError; an abort of the call is passed through as it is. */
export function classifyAiError(error: unknown): unknown {
  if (error instanceof AiServiceError || error instanceof APIUserAbortError || isAbort(error)) return error;
  if (error instanceof APIConnectionError) return new AiServiceError(`the AI service could not be reached: ${error.message}`, true, undefined, undefined, { cause: error });
  if (error instanceof APIError && typeof error.status === 'number') {
    const { status, headers } = error;
    const told = headers?.get('x-should-retry');
    const retryable = told === 'true' ? true : told === 'false' ? false : isRetryableStatus(status);
    const what = retryable ? 'the AI service failed' : 'the AI service refused the request';
    return new AiServiceError(`${what} (${status}): ${error.message}`, retryable, retryable ? retryAfterMs(headers) : undefined, status, { cause: error });
  }
  // An error event inside the stream, the connection dropped mid-answer, a garbled chunk: the answer is incomplete.
  const message = error instanceof Error ? error.message : String(error);
  return new AiServiceError(`the AI service's answer was cut off: ${message}`, true, undefined, undefined, { cause: error });
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

/**
 * How long the service asks to wait: `retry-after-ms` (OpenAI's), else `Retry-After` in
 * seconds or as an HTTP date (RFC 9110 10.2.3); undefined when it says nothing usable.
 */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  const ms = Number.parseFloat(headers?.get('retry-after-ms') ?? '');
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers?.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Number.parseFloat(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
