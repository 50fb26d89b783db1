import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import { BrokerFullError, BrokerUnavailableError } from '../broker/broker.js';
import { FaultLog } from '../fault-log.js';
import { AUTH_ERROR_STATUS, AuthError, challengeFor } from '../auth/errors.js';
import { ForeignBookError, ValidationError } from '../progress/errors.js';
import { ConflictError } from '../progress/tracker.js';
import { isDatabaseUnavailable, rootMessage } from '../store/failures.js';

/** Seconds a client should wait before retrying while a backend is down. */
export const RETRY_AFTER_SECONDS = 2;

/** An error with its HTTP status and a stable machine-readable code. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    /** Sent as Retry-After; a 503 always has one. */
    readonly retryAfterSeconds: number | null = status === 503 ? RETRY_AFTER_SECONDS : null,
  ) {
    super(message);
  }
}

/** Neither Redis nor the database could answer. */
export class ServiceUnavailableError extends ApiError {
  constructor(message: string) {
    super(503, 'service_unavailable', message);
  }
}

export function errorBody(code: string, message: string) {
  return { success: false as const, error: { code, message } };
}

/** The one place where errors become HTTP responses; nothing internal leaks to the client. */
export function toErrorResponse(error: unknown, c: Context, log: Logger): Response {
  if (error instanceof ApiError) {
    if (error.retryAfterSeconds !== null) c.header('Retry-After', String(error.retryAfterSeconds));
    return c.json(errorBody(error.code, error.message), error.status);
  }
  if (error instanceof AuthError) {
    const challenge = challengeFor(error);
    if (challenge !== null) c.header('WWW-Authenticate', challenge);
    const status = AUTH_ERROR_STATUS[error.code];
    if (status === 503) c.header('Retry-After', String(RETRY_AFTER_SECONDS));
    return c.json(errorBody(error.code, error.message), status);
  }
  // Another tenant's book: the very answer a missing book gets.
  if (error instanceof ForeignBookError) return c.json(errorBody('not_found', error.message), 404);
  if (error instanceof ValidationError) return c.json(errorBody('invalid_progress', error.message), 400);
  // Backend faults are logged where they happen (the broker), or here at most once per interval.
  if (error instanceof BrokerFullError) {
    c.header('Retry-After', String(RETRY_AFTER_SECONDS));
    return c.json(errorBody('broker_full', 'the progress broker is out of memory; retry later'), 503);
  }
  if (error instanceof BrokerUnavailableError) {
    c.header('Retry-After', String(RETRY_AFTER_SECONDS));
    return c.json(errorBody('broker_unavailable', 'progress broker is unavailable; retry later'), 503);
  }
  if (isDatabaseUnavailable(error)) {
    FaultLog.of(log).report('database_unavailable', 'database unavailable; answered 503', { err: rootMessage(error) });
    c.header('Retry-After', String(RETRY_AFTER_SECONDS));
    return c.json(errorBody('database_unavailable', 'the database is unavailable; retry later'), 503);
  }
  if (error instanceof ConflictError) {
    c.header('Retry-After', '1');
    return c.json(errorBody('conflict', error.message), 409);
  }
  if (error instanceof HTTPException) {
    const code = error.status === 413 ? 'payload_too_large' : 'http_error';
    const message = error.status === 413 ? 'request body is too large' : error.message || 'request failed';
    return c.json(errorBody(code, message), error.status as ContentfulStatusCode);
  }
  log.error({ err: rootMessage(error) }, 'unhandled error');
  return c.json(errorBody('internal_error', 'internal server error'), 500);
}
