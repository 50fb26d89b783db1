import { describe, expect, it } from 'vitest';
import { CLUSTER_PARTITIONS, clusterKeys, partitionOf, slotOf } from '../../src/broker/cluster-keys.js';
import { redisKeys } from '../../src/broker/keys.js';

/** The test vectors of docs/protocol.md ("Redis Cluster"): a port in another language must give the same. */
const VECTORS: Array<[bookId: string, partition: number, slot: number]> = [
  ['your-book-id', 130, 5749],
  ['book-1', 154, 15447],
  ['a', 44, 10126],
  ['Z_9-x', 216, 2433],
  ['0123456789', 242, 14064],
];

describe('the cluster key layout', () => {
  it('matches the test vectors of docs/protocol.md', () => {
    const keys = clusterKeys('booksai:');
    for (const [bookId, partition, slot] of VECTORS) {
      expect(partitionOf(bookId), bookId).toBe(partition);
      expect(keys.state(bookId)).toBe(`booksai:{p${partition}}:progress:${bookId}`);
      expect(slotOf(keys.state(bookId)), bookId).toBe(slot);
    }
  });

  it('names every key and channel of a book inside its partition\'s hash tag, and reads the book back from a channel', () => {
    const keys = clusterKeys('booksai:');
    const p = partitionOf('your-book-id');
    expect([keys.fence('your-book-id'), keys.channel('your-book-id'), keys.dirty(p), keys.claimed(p), keys.claimOwner(p), keys.claimRound(p), keys.feed(p)]).toEqual([
      'booksai:{p130}:fence:your-book-id',
      'booksai:{p130}:updates:your-book-id',
      'booksai:{p130}:dirty',
      'booksai:{p130}:dirty:claimed',
      'booksai:{p130}:dirty:owner',
      'booksai:{p130}:dirty:round',
      'booksai:{p130}:feed',
    ]);
    expect(keys.bookIdOfChannel(keys.channel('x:feed-}:updates:y'))).toBe('x:feed-}:updates:y');
    expect(keys.partitions).toBe(CLUSTER_PARTITIONS);
  });

  it('keeps the plain key names, without hash tags, on one Redis and under Sentinel', () => {
    const keys = redisKeys('booksai:');
    expect([keys.state('b'), keys.channel('b'), keys.dirty(0), keys.fence('b'), keys.feed(0), keys.partitions]).toEqual([
      'booksai:progress:b',
      'booksai:updates:b',
      'booksai:dirty',
      'booksai:fence:b',
      null,
      1,
    ]);
  });
});
