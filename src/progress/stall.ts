import { isTerminal } from './schema.js';
import type { BookProgress } from './schema.js';

/**
 * When a book's publisher went silent: the time of its last update, once the book is not
 * terminal and has had no update for `staleAfterMs`; undefined otherwise. Computed at read
 * (no sweeper): the state stored and streamed stays as published, and a client watching a
 * stream computes the same from `timestamp` (the dashboard does, every second).
 */
export function stalledSince(state: Pick<BookProgress, 'status' | 'timestamp'>, now: number, staleAfterMs: number): number | undefined {
  if (isTerminal(state.status) || now - state.timestamp < staleAfterMs) return undefined;
  return state.timestamp;
}

/** The state with `stalledSince` set when it is stalled at `now` (the same object when it is not). */
export function withStall(state: BookProgress, now: number, staleAfterMs: number): BookProgress {
  const since = stalledSince(state, now, staleAfterMs);
  return since === undefined ? state : { ...state, stalledSince: since };
}
