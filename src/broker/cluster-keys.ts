import type { RedisKeys } from './keys.js';

/**
 * Partitions of a cluster's books. Each is one hash slot (its hash tag `{p<N>}`), so the keys of
 * a commit (state, fence, dirty set) and its channels live on one master; 256 tags spread over
 * three masters within 35 % each, and over more masters about evenly. Part of the wire format:
 * every publisher must use the same number.
 */
export const CLUSTER_PARTITIONS = 256;

/**
 * The partition of a book: FNV-1a (32 bit) of the bookId's UTF-8 bytes, modulo 256.
 * docs/protocol.md has test vectors and ports.
 */
export function partitionOf(bookId: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(bookId, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % CLUSTER_PARTITIONS;
}

/**
 * The Redis Cluster layout: `<prefix>{p<N>}:progress:<bookId>` and so on, N = partitionOf(bookId).
 * Everything one commit touches hashes to the slot of `{p<N>}`.
 */
export function clusterKeys(prefix: string): RedisKeys {
  const tag = (partition: number) => `${prefix}{p${partition}}:`;
  const ofBook = (bookId: string) => tag(partitionOf(bookId));
  const channelMarker = '}:updates:';
  return {
    partitions: CLUSTER_PARTITIONS,
    partitionOf,
    state: (bookId) => `${ofBook(bookId)}progress:${bookId}`,
    fence: (bookId) => `${ofBook(bookId)}fence:${bookId}`,
    channel: (bookId) => `${ofBook(bookId)}updates:${bookId}`,
    bookIdOfChannel: (channel) => channel.slice(channel.indexOf(channelMarker, prefix.length) + channelMarker.length),
    feed: (partition) => `${tag(partition)}feed`,
    dirty: (partition) => `${tag(partition)}dirty`,
    claimed: (partition) => `${tag(partition)}dirty:claimed`,
    claimOwner: (partition) => `${tag(partition)}dirty:owner`,
    claimRound: (partition) => `${tag(partition)}dirty:round`,
  };
}

const SLOTS = 16_384;

/** Redis Cluster's hash slot of a key or channel: CRC16 (XMODEM) of its hash tag, or of all of it. */
export function slotOf(key: string): number {
  const open = key.indexOf('{');
  const close = open === -1 ? -1 : key.indexOf('}', open + 1);
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(hashed, 'utf8')) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % SLOTS;
}
