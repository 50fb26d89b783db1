import type { Caller } from '../../auth/caller.js';
import { Refusal } from '../../refusal.js';
import type { UserConnections } from './user-connections.js';

/** Seconds a user at MAX_CONNECTIONS_PER_USER should wait before opening another stream or WebSocket. */
export const USER_LIMIT_RETRY_AFTER_SECONDS = 5;

/** Open connections of one kind (the SSE streams, the WebSockets). */
export interface Counted {
  readonly size: number;
}

/** Admission control beyond counting (LoadMonitor): throws a 503 Refusal while new connections must wait. */
export interface Admission {
  check(): void;
}

/**
 * The limits on open connections, SSE streams and WebSockets together: MAX_SSE_CONNECTIONS for
 * the process, MAX_CONNECTIONS_PER_USER for each user (see UserConnections), and the load
 * (`admission`: 503 `overloaded`) for a new one.
 */
export class ConnectionCap {
  readonly #max: number;
  readonly #users: UserConnections;
  readonly #counted: Counted[] = [];
  readonly #admission: Admission | null;

  constructor(max: number, users: UserConnections, admission: Admission | null = null) {
    this.#max = max;
    this.#users = users;
    this.#admission = admission;
  }

  /** Counts `connections` against the process's cap from now on. */
  count(connections: Counted): void {
    this.#counted.push(connections);
  }

  /** True while the process holds its maximum of streams and WebSockets. */
  get full(): boolean {
    let open = 0;
    for (const connections of this.#counted) open += connections.size;
    return open >= this.#max;
  }

  /** Throws 503 `overloaded` while the process is over its load limits, 503 `too_many_connections` while it is full. */
  checkRoom(): void {
    this.#admission?.check();
    if (this.full) throw new Refusal(503, 'too_many_connections', 'this server holds its maximum of streams and WebSockets; retry later or elsewhere');
  }

  /**
   * Takes a place for the caller's user, after checkRoom(); the result gives it back (once).
   * Throws 429 `too_many_connections` when the user holds its maximum.
   */
  admit(caller: Caller): () => void {
    this.checkRoom();
    const release = this.#users.acquireFor(caller);
    if (release === null) {
      throw new Refusal(429, 'too_many_connections', 'this user holds its maximum of open streams and WebSockets; close one first', {
        retryAfterSeconds: USER_LIMIT_RETRY_AFTER_SECONDS,
      });
    }
    return release;
  }
}
