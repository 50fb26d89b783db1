import { describe, expect, it } from 'vitest';
import { MemoryTextLog } from '../../src/broker/memory-text.js';
import type { TextLog } from '../../src/broker/text-log.js';
import { TextFeed } from '../../src/server/delivery/text-feed.js';

/**
 * Review: POST /api/ai/progress/:bookId/text takes any section up to 1,000,000, and a reader's
 * catch-up reads every section number from 1 to the one being written, one log call each (a
 * Redis round trip), held sections or not, before its stream opens and after it has gone.
 */
describe('TextFeed catch-up cost (review)', () => {
  it('a writer cannot make each new reader read a million sections', async () => {
    const log = new MemoryTextLog({ ttlSeconds: 60, fenceOf: () => 0 });
    // What the route lets a writer send (TextAppendSchema: section up to 1,000,000): one chunk at section 1,000,000.
    await log.append('book', { chapter: 1, section: 1_000_000, offset: 0 }, 'x');
    let reads = 0;
    const counting: TextLog = new Proxy(log, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver);
        if (name === 'read') return (...args: Parameters<TextLog['read']>) => (reads++, target.read(...args));
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const feed = new TextFeed(counting, { onDue: () => {}, onOverflow: () => {} });
    await feed.add('book', null);
    feed.close();
    // One held section: a handful of reads would do; the feed makes one per section number.
    expect(reads).toBeLessThan(100);
  });

  it('stops reading once the reader has gone, and at the first section the log does not hold', async () => {
    const log = new MemoryTextLog({ ttlSeconds: 60, fenceOf: () => 0 });
    for (let section = 1; section <= 20; section++) await log.append('book', { chapter: 1, section, offset: 0 }, `section ${section}`);
    let reads = 0;
    let feed: TextFeed | null = null;
    const closing: TextLog = new Proxy(log, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver);
        if (name === 'read') {
          return (...args: Parameters<TextLog['read']>) => {
            // The client goes away while its second section is read.
            if (++reads === 2) feed?.close();
            return target.read(...args);
          };
        }
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    feed = new TextFeed(closing, { onDue: () => {}, onOverflow: () => {} });
    await feed.add('book', null);
    expect(reads).toBe(2);

    // Sections 1 and 20 held, none between: a new reader reads 1 and 2, not 3 to 20.
    const gappy = new MemoryTextLog({ ttlSeconds: 60, fenceOf: () => 0 });
    await gappy.append('book', { chapter: 1, section: 1, offset: 0 }, 'one');
    await gappy.append('book', { chapter: 1, section: 20, offset: 0 }, 'twenty');
    let gappyReads = 0;
    const counting: TextLog = new Proxy(gappy, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver);
        if (name === 'read') return (...args: Parameters<TextLog['read']>) => (gappyReads++, target.read(...args));
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const second = new TextFeed(counting, { onDue: () => {}, onOverflow: () => {} });
    await second.add('book', null);
    second.close();
    expect(gappyReads).toBe(2);
  });
});
