import type { RedisBroker } from '../../src/broker/redis.js';
import { RedisTextLog } from '../../src/broker/redis-text.js';
import type { BookProgress } from '../../src/progress/schema.js';
import { silentLog } from '../support/service.js';
import type { TextLogUnderTest } from './text-contract.js';

/** A state a run of `fence` commits first, which raises the book's fence. */
export function fencedState(bookId: string): BookProgress {
  return { bookId, status: 'GENERATING', generationStep: 'PLANNING', currentChapter: 0, totalChapters: 1, currentSection: 0, totalSections: 1, overallProgress: 0, message: '', timestamp: Date.now(), version: 1 } as BookProgress;
}

/** A Redis text log on `broker`, for the contract suite. */
export function textLogOn(broker: RedisBroker, keyPrefix: string, maxSectionBytes: number): TextLogUnderTest {
  const text = new RedisTextLog({ broker, keyPrefix, ttlSeconds: 600, log: silentLog, maxSectionBytes });
  return {
    text,
    raiseFence: async (bookId, fence) => {
      const held = await broker.get(bookId);
      await broker.commit({ ...fencedState(bookId), version: (held?.version ?? 0) + 1 }, held?.version ?? null, fence);
    },
    expireSection: async (bookId, chapter, section) => {
      // What the TTL does when it runs out: the key goes, the hash of attempts stays.
      await broker.shared.commands.del(text.keys.section(bookId, chapter, section));
    },
    close: async () => {
      text.close();
      await broker.close();
    },
  };
}
