import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryTextLog } from '../../src/broker/memory-text.js';
import type { TextLog } from '../../src/broker/text-log.js';
import { TextFeed } from '../../src/server/delivery/text-feed.js';
import { TextCopy } from '../support/text.js';
import { until } from '../support/wait.js';

/** The memory log, whose announcements to this reader are lost where `lost(n)` says (as while Redis reconnects). */
function lossy(log: MemoryTextLog, lost: (n: number) => boolean): TextLog {
  let n = 0;
  return {
    beginSection: (...args) => log.beginSection(...args),
    append: (...args) => log.append(...args),
    read: (...args) => log.read(...args),
    current: (bookId) => log.current(bookId),
    chapterSaved: (...args) => log.chapterSaved(...args),
    subscribeAllText: (listener) => log.subscribeAllText(listener),
    subscribeText: (bookId, listener) =>
      log.subscribeText(bookId, (chunk) => {
        if (!lost(n++)) listener(chunk);
      }),
  };
}

describe('TextFeed', () => {
  it('gives a reader every byte once, in order, even when announcements are lost (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.string({ minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.boolean(), { maxLength: 40 }),
        async (sections, drops) => {
          const log = new MemoryTextLog({ ttlSeconds: 60, fenceOf: () => 0 });
          const copy = new TextCopy();
          let dropping = true;
          const feed: TextFeed = new TextFeed(lossy(log, (n) => dropping && drops[n] === true), {
            onDue: () => {
              for (let frame = feed.take(); frame !== null; frame = feed.take()) if (frame.kind === 'text') copy.apply(frame);
            },
            onOverflow: () => {
              throw new Error('overflow');
            },
            coalesceMs: 5,
          });
          await feed.add('b', null);
          for (const [i, chunks] of sections.entries()) {
            await log.beginSection('b', 1, i + 1);
            let offset = 0;
            for (const text of chunks) {
              const result = await log.append('b', { chapter: 1, section: i + 1, offset }, text);
              if (!result.ok) throw new Error('refused');
              offset = result.length;
            }
          }
          // One more section, announced, so that a loss at the very end is noticed too.
          const last = sections.length + 1;
          dropping = false;
          await log.beginSection('b', 1, last);
          await log.append('b', { chapter: 1, section: last, offset: 0 }, 'end');
          await until(() => copy.text('b', 1, last) === 'end', 5_000, 'the last chunk');
          feed.close();
          log.close();
          expect(copy.faults).toEqual([]);
          sections.forEach((chunks, i) => expect(copy.text('b', 1, i + 1)).toBe(chunks.join('')));
        },
      ),
      { numRuns: 60 },
    );
  });
});
