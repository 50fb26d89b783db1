import { ReplyError } from 'ioredis';
import type { FaultLog } from '../fault-log.js';
import { beforeDeadline } from '../request-deadline.js';
import { BrokerFullError, BrokerUnavailableError } from './broker.js';

/**
 * Runs one Redis command and says what its failure means for the caller: a full Redis
 * (BrokerFullError), one that does not answer or not now (BrokerUnavailableError, the caller
 * retries), or any other reply error as it is.
 */
export async function redisCall<T>(faults: FaultLog, command: () => Promise<T>): Promise<T> {
  try {
    // Inside a request, its one deadline (BACKEND_TIMEOUT_MS for the whole request) bounds the call too.
    return await beforeDeadline(command(), () => new Error('Command timed out: the request\'s deadline passed'));
  } catch (error) {
    throw classifyRedisError(error, faults);
  }
}

/** The error a failed Redis command stands for, reported to the fault log. */
export function classifyRedisError(error: unknown, faults: FaultLog): unknown {
  const message = (error as Error).message;
  if (error instanceof ReplyError) {
    // At maxmemory with noeviction Redis refuses writes (a script's first write, so nothing of it ran).
    if (/\bOOM\b/.test(message)) {
      faults.report('redis_full', 'redis is out of memory; commits are refused', { err: message.split('.')[0] });
      return new BrokerFullError('redis is out of memory', { cause: error });
    }
    if (!isTransientReply(error as Error)) return error;
  }
  faults.report('redis_unavailable', 'redis did not answer', { err: message });
  return new BrokerUnavailableError(`redis unavailable: ${message}`, { cause: error });
}

/**
 * Replies that mean "not now" rather than "never": a cluster electing a master or moving a slot,
 * a Sentinel-demoted master refusing writes, a replica still loading. The caller retries (503).
 */
function isTransientReply(error: Error): boolean {
  return /^(CLUSTERDOWN|TRYAGAIN|MOVED|ASK|LOADING|MASTERDOWN|READONLY|NOREPLICAS|UNBLOCKED)\b/.test(error.message);
}
