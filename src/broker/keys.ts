/**
 * The public Redis layout (docs/protocol.md); every name starts with the configured prefix.
 * One Redis (or Sentinel) uses `redisKeys`, the plain names; Redis Cluster uses `clusterKeys`
 * (cluster-keys.ts), whose names put each book's keys and channel in one hash slot.
 */
export interface RedisKeys {
  /** Partitions of the dirty set, claimed independently by snapshotters: 1 on one Redis. */
  readonly partitions: number;
  /** The partition that holds `bookId`'s dirty mark. */
  partitionOf(bookId: string): number;
  /** String: the JSON state of one book, with the TTL. */
  state(bookId: string): string;
  /** String: the fence (lease epoch) of the run that last wrote one book's state, with the state's TTL. */
  fence(bookId: string): string;
  /** Pub/sub channel: every new state of one book, as JSON. */
  channel(bookId: string): string;
  bookIdOfChannel(channel: string): string;
  /**
   * Pub/sub channel carrying every book of a partition (the every-book stream), or null where
   * one pattern subscription to `channel('*')` serves instead (one Redis).
   */
  feed(partition: number): string | null;
  /** Set: books of the partition committed since its last snapshot. */
  dirty(partition: number): string;
  /** Set: books of the partition taken by the snapshot in progress. */
  claimed(partition: number): string;
  /** String with a lease: who holds the partition's snapshot claim. */
  claimOwner(partition: number): string;
  /** String: the last snapshot round claimed, so each round is snapshotted once cluster-wide. */
  claimRound(partition: number): string;
}

/** The plain layout, for one Redis and for Sentinel: `<prefix>progress:<bookId>` (docs/protocol.md). */
export function redisKeys(prefix: string): RedisKeys {
  const channelPrefix = `${prefix}updates:`;
  return {
    partitions: 1,
    partitionOf: () => 0,
    state: (bookId) => `${prefix}progress:${bookId}`,
    fence: (bookId) => `${prefix}fence:${bookId}`,
    channel: (bookId) => `${channelPrefix}${bookId}`,
    bookIdOfChannel: (channel) => channel.slice(channelPrefix.length),
    feed: () => null,
    dirty: () => `${prefix}dirty`,
    claimed: () => `${prefix}dirty:claimed`,
    claimOwner: () => `${prefix}dirty:owner`,
    claimRound: () => `${prefix}dirty:round`,
  };
}
