import type { BookProgress } from '../progress/schema.js';

export type CommitResult =
  | { committed: true }
  | { committed: false; current: BookProgress | null }
  /** The commit carried a fence older than one the book has seen: its writer was superseded. */
  | { committed: false; fenced: true };

/**
 * A writer's lease token for one book, opaque here: a commit carrying a fence lower than one
 * already committed for the book is refused where the state lives. Commits without one are never refused.
 */
export type Fence = number;

/** Where each book's versioned state lives: read it, and replace it only if nobody else did meanwhile. */
export interface VersionedStates {
  get(bookId: string): Promise<BookProgress | null>;
  /** Stores and publishes `state` if the held version equals `expectedVersion` (null: none held) and `fence` is not superseded. */
  commit(state: BookProgress, expectedVersion: number | null, fence?: Fence): Promise<CommitResult>;
}
