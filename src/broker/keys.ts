/** The public Redis layout (docs/protocol.md); every name starts with the configured prefix. */
export interface RedisKeys {
  /** String: the JSON state of one book, with the TTL. */
  state(bookId: string): string;
  /** String: the fence (lease epoch) of the run that last wrote one book's state, with the state's TTL. */
  fence(bookId: string): string;
  /** Pub/sub channel: every new state of one book, as JSON. */
  channel(bookId: string): string;
  bookIdOfChannel(channel: string): string;
  /** Set: books committed since the last snapshot. */
  dirty: string;
  /** Set: books taken by the snapshot in progress. */
  claimed: string;
  /** String with a lease: who holds the snapshot claim. */
  claimOwner: string;
  /** String: the last snapshot round claimed, so each round is snapshotted once cluster-wide. */
  claimRound: string;
}

export function redisKeys(prefix: string): RedisKeys {
  const channelPrefix = `${prefix}updates:`;
  return {
    state: (bookId) => `${prefix}progress:${bookId}`,
    fence: (bookId) => `${prefix}fence:${bookId}`,
    channel: (bookId) => `${channelPrefix}${bookId}`,
    bookIdOfChannel: (channel) => channel.slice(channelPrefix.length),
    dirty: `${prefix}dirty`,
    claimed: `${prefix}dirty:claimed`,
    claimOwner: `${prefix}dirty:owner`,
    claimRound: `${prefix}dirty:round`,
  };
}
