import { describe, expect, it } from 'vitest';
import { BookQueue } from '../../src/server/delivery/book-queue.js';
import { EncodedState } from '../../src/server/delivery/encoded-state.js';

const update = (bookId: string, version: number, terminal = false) => new EncodedState(bookId, version, terminal, `{"bookId":"${bookId}","version":${version}}`, undefined);

function drain(queue: BookQueue): string[] {
  const taken: string[] = [];
  for (let u = queue.take(); u !== null; u = queue.take()) taken.push(`${u.bookId}@${u.version}`);
  return taken;
}

describe('BookQueue', () => {
  it('hands out pending updates in the order books became pending, the newest of each', () => {
    const queue = new BookQueue();
    for (const u of [update('a', 1), update('b', 1), update('a', 3), update('a', 2), update('c', 5)]) queue.offer(u);
    expect(queue.hasPending).toBe(true);
    expect(drain(queue)).toEqual(['a@3', 'b@1', 'c@5']);
    expect(queue.hasPending).toBe(false);
  });

  it('refuses versions the client has, and counts what it took as sent', () => {
    const queue = new BookQueue([['a', 4]]);
    expect(queue.offer(update('a', 4))).toBe(false);
    expect(queue.offer(update('a', 5))).toBe(true);
    expect(drain(queue)).toEqual(['a@5']);
    expect(queue.sent('a')).toBe(5);
    expect(queue.offer(update('a', 5))).toBe(false);
    expect(queue.sent('b')).toBe(0);
  });

  it('never replaces a pending terminal state', () => {
    const queue = new BookQueue();
    queue.offer(update('a', 7, true));
    expect(queue.offer(update('a', 8))).toBe(false);
    expect(drain(queue)).toEqual(['a@7']);
  });

  it('keeps working after being drained, as streams use it update after update', () => {
    const queue = new BookQueue();
    for (let version = 1; version <= 3; version++) {
      queue.offer(update('a', version));
      expect(drain(queue)).toEqual([`a@${version}`]);
    }
  });

  it('drops a forgotten book, pending or not, and starts it afresh when offered again', () => {
    const queue = new BookQueue([['a', 2]]);
    queue.offer(update('a', 3));
    queue.offer(update('b', 1));
    queue.forget('a');
    expect(queue.sent('a')).toBe(0);
    expect(drain(queue)).toEqual(['b@1']);
    queue.offer(update('a', 1));
    expect(drain(queue)).toEqual(['a@1']);
  });

  it('drops what is pending on clearPending, keeping what was sent', () => {
    const queue = new BookQueue([['a', 2]]);
    queue.offer(update('a', 3));
    queue.clearPending();
    expect(queue.hasPending).toBe(false);
    expect(drain(queue)).toEqual([]);
    expect(queue.sent('a')).toBe(2);
  });
});

describe('BookQueue for a client that never catches up', () => {
  it('hands out each book once, at its newest version, however far behind the client is', () => {
    const queue = new BookQueue();
    // Two books offered per round, one taken: the client falls behind for good.
    for (let version = 1; version <= 9_999; version++) {
      queue.offer(update('a', version));
      queue.offer(update('b', version));
      queue.take();
    }
    expect(drain(queue)).toEqual(['b@9999']);
    queue.offer(update('a', 10_000));
    queue.offer(update('b', 10_000));
    expect(drain(queue)).toEqual(['a@10000', 'b@10000']);
  });

  it('takes from the middle of the queue, then queues a book again behind the rest', () => {
    const queue = new BookQueue();
    queue.offer(update('a', 1));
    queue.offer(update('b', 1));
    queue.offer(update('c', 1));
    expect(queue.take()?.bookId).toBe('a');
    queue.offer(update('a', 2));
    queue.offer(update('b', 2));
    expect(drain(queue)).toEqual(['b@2', 'c@1', 'a@2']);
  });

  it('stops counting a forgotten book as pending', () => {
    const queue = new BookQueue();
    queue.offer(update('a', 1));
    queue.forget('a');
    expect(queue.hasPending).toBe(false);
    expect(queue.take()).toBeNull();
  });
});
