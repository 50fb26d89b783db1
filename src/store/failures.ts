/** Connection-level failures of postgres.js: the database is unreachable, not the query wrong. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECTION_STALLED',
  'DATABASE_TIMEOUT',
]);

/**
 * SQLSTATEs that mean "try again later": connection exception, operator intervention (57P0x),
 * insufficient resources, and waits cut short: statement_timeout (57014, query_canceled) and
 * lock_timeout (55P03), as when a migration or a long transaction holds a lock.
 */
const TRANSIENT_SQLSTATE = /^(08|57P0|53|57014$|55P03$)/;

/** True when `error` (or what it wraps) says the database could not be reached. */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (CONNECTION_CODES.has(code) || TRANSIENT_SQLSTATE.test(code))) return true;
    if (e.message.includes('PGlite is closed')) return true;
  }
  return false;
}

/**
 * The innermost message of an error chain. Drizzle's own message repeats the query and its
 * parameters (chapter text, say), which must not reach the logs.
 */
export function rootMessage(error: unknown): string {
  let e: unknown = error;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}
