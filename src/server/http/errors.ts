import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import { BrokerFullError, BrokerNotReplicatedError, BrokerUnavailableError } from '../../broker/broker.js';
import { FaultLog } from '../../fault-log.js';
import { RunRequestError } from '../../orchestrator/orchestrator.js';
import { Refusal } from '../../refusal.js';
import { isDatabaseUnavailable, rootMessage } from '../../store/failures.js';

/**
 * The one mapping from errors to HTTP answers: a Refusal as it is, the backends' and the
 * orchestrator's errors as their refusals, anything else a 500 that leaks nothing.
 */
export function asRefusal(error: unknown, log: Logger): Refusal {
  if (error instanceof Refusal) return error;
  // Backend faults are logged where they happen (the broker), or here at most once per interval.
  if (error instanceof BrokerFullError) return new Refusal(503, 'broker_full', 'the progress broker is out of memory; retry later');
  if (error instanceof BrokerNotReplicatedError) return new Refusal(503, 'not_replicated', `${error.message}; retry (a repeated state is harmless)`);
  if (error instanceof BrokerUnavailableError) return new Refusal(503, 'broker_unavailable', 'progress broker is unavailable; retry later');
  if (isDatabaseUnavailable(error)) {
    FaultLog.of(log).report('database_unavailable', 'database unavailable; answered 503', { err: rootMessage(error) });
    return new Refusal(503, 'database_unavailable', 'the database is unavailable; retry later');
  }
  if (error instanceof RunRequestError) {
    return error.reason === 'unknown' ? new Refusal(404, 'not_found', error.message) : new Refusal(409, 'invalid_state', error.message);
  }
  if (error instanceof HTTPException) {
    if (error.status === 413) return new Refusal(413, 'payload_too_large', 'request body is too large');
    return new Refusal(error.status, 'http_error', error.message || 'request failed');
  }
  log.error({ err: rootMessage(error) }, 'unhandled error');
  return new Refusal(500, 'internal_error', 'internal server error');
}

/** The answer to `refusal`: its JSON body, status and headers (plus `headers`). */
export function refusalResponse(c: Context, refusal: Refusal, headers: Record<string, string> = {}): Response {
  return c.json(refusal.body, refusal.status as ContentfulStatusCode, { ...refusal.headers, ...headers });
}

/** The app's onError: every error a route throws becomes its answer here. */
export function toErrorResponse(error: unknown, c: Context, log: Logger): Response {
  return refusalResponse(c, asRefusal(error, log));
}
