import type { BookProgress } from '../progress/schema.js';
import type { CommitResult, Fence, VersionedStates } from './commit.js';

/** Called with each new state, and the same state as JSON (what the broker carried, when it is exactly the state). */
export type ProgressListener = (state: BookProgress, json: string) => void;

/**
 * Holds the latest state of each book and carries every new one to subscribers.
 *
 * - `get` returns null when no state is held (never set, or expired after the TTL).
 * - `commit` is atomic where the state lives: check the fence (a lower one than the book's is
 *   refused), compare the held version, store with the TTL, mark the book dirty for the
 *   snapshotter (see DirtyClaims), publish. One round trip for Redis.
 * - Delivery: listeners see states of one book in commit order. It is at-most-once while
 *   the broker is disconnected; on reconnection the latest state of every subscribed book is
 *   delivered again, so a listener that keeps the highest version ends on the latest state.
 * - When the backend cannot answer, calls fail fast (within the backend timeout when it hangs)
 *   with BrokerUnavailableError; BrokerFullError when it refuses a write for lack of memory;
 *   BrokerNotReplicatedError when a commit was not copied to the replicas asked for in time.
 */
export interface Broker extends VersionedStates {
  get(bookId: string): Promise<BookProgress | null>;
  /** The states of several books in one round trip, in order; null where none is held. */
  getMany(bookIds: readonly string[]): Promise<Array<BookProgress | null>>;
  commit(state: BookProgress, expectedVersion: number | null, fence?: Fence): Promise<CommitResult>;
  /** Resolves once `listener` receives every later commit of bookId; the result unsubscribes it. */
  subscribe(bookId: string, listener: ProgressListener): Promise<() => void>;
  /**
   * True while subscriptions deliver every commit; false while they may miss some (Redis
   * disconnected, or subscriptions still being restored). Cached states are only trusted then.
   */
  isLive(): boolean;
  /**
   * Like subscribe, for the commits of every book (the list page's stream). States missed while
   * disconnected cannot be delivered again for every book: `onGap` is called after a reconnection
   * instead, and the subscriber resyncs from elsewhere.
   */
  subscribeAll(listener: ProgressListener, onGap: () => void): Promise<() => void>;
  close(): Promise<void>;
}

/**
 * The snapshotter's side of a broker: the books committed since the last snapshot, claimed by
 * one process at a time and settled once written.
 */
export interface DirtyClaims {
  /**
   * Takes the books committed since the last claim, for one snapshot. Only one claim is out at
   * a time cluster-wide, and at most one per `round` (null: outside rounds, e.g. at shutdown);
   * null when another owner holds the claim or the round was taken. An owner that never
   * settles loses its claim after `leaseMs`, and its books return to the next claim.
   * On Redis Cluster all of this holds per partition of the books: a claim in a round may take
   * only some partitions, and the next claim in the same round takes more (null once none is left).
   */
  claimDirty(owner: string, leaseMs: number, round: number | null): Promise<string[] | null>;
  /** Ends `owner`'s claim: done=true drops its books, done=false returns them to the dirty set. */
  settleClaim(owner: string, done: boolean): Promise<void>;
}

/** The broker's backend cannot be reached (or does not answer in time); the caller may retry later. */
export class BrokerUnavailableError extends Error {
  override readonly name: string = 'BrokerUnavailableError';
}

/**
 * The backend refused a commit because it is out of memory (Redis at `maxmemory` with
 * `noeviction`). An outage like any other: nothing was written, retrying later can succeed.
 */
export class BrokerFullError extends BrokerUnavailableError {
  override readonly name: string = 'BrokerFullError';
}

/**
 * REDIS_WAIT_REPLICAS: a commit was applied on the master but fewer replicas than asked
 * acknowledged it in time. It is visible and may well survive, but a failover now could lose
 * it: the publisher is told to retry (a repeat of a state is harmless, the latest wins).
 */
export class BrokerNotReplicatedError extends BrokerUnavailableError {
  override readonly name: string = 'BrokerNotReplicatedError';
}
