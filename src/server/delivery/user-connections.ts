import type { Caller } from '../../auth/caller.js';

/**
 * Open SSE streams and WebSockets per user in this process, so that one user (a leaked token, a
 * runaway tab) cannot take the connections of everyone: MAX_CONNECTIONS_PER_USER.
 */
export class UserConnections {
  readonly #max: number;
  readonly #open = new Map<string, number>();

  constructor(max: number) {
    this.#max = max;
  }

  /** Takes a place for `user`; the result gives it back (once). Null when the user holds the maximum. */
  acquire(user: string): (() => void) | null {
    const held = this.#open.get(user) ?? 0;
    if (held >= this.#max) return null;
    this.#open.set(user, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(user) ?? 1) - 1;
      if (left === 0) this.#open.delete(user);
      else this.#open.set(user, left);
    };
  }

  /** acquire() for the caller's user; callers without one (open mode) are not counted. */
  acquireFor(caller: Caller): (() => void) | null {
    return caller.sub === null ? () => {} : this.acquire(caller.sub);
  }

  /** Users holding connections: for leak checks. */
  get users(): number {
    return this.#open.size;
  }
}
