import { MemoryBroker } from '../../src/broker/memory.js';
import { MemoryTextLog } from '../../src/broker/memory-text.js';
import type { BookProgress } from '../../src/progress/schema.js';
import { textLogContract } from './text-contract.js';

textLogContract('memory', async ({ maxSectionBytes }) => {
  const broker = new MemoryBroker({ ttlSeconds: 60 });
  const fences = new Map<string, number>();
  let skewMs = 0;
  const text = new MemoryTextLog({ ttlSeconds: 600, maxSectionBytes, graceSeconds: 1, fenceOf: (bookId) => fences.get(bookId) ?? 0, now: () => Date.now() + skewMs });
  return {
    text,
    raiseFence: async (bookId, fence) => {
      // The memory broker keeps its fences private: a fenced commit raises them, as a new run's first state does.
      const state = { bookId, status: 'GENERATING', generationStep: 'PLANNING', currentChapter: 0, totalChapters: 1, currentSection: 0, totalSections: 1, overallProgress: 0, message: '', timestamp: Date.now(), version: 1 } as BookProgress;
      await broker.commit(state, null, fence);
      fences.set(bookId, fence);
    },
    expireSection: async (bookId, chapter, section) => {
      // Its grace runs out (the clock moves on 2 s): the section goes, the book's attempts stay.
      await text.chapterSaved(bookId, chapter, section);
      skewMs += 2_000;
    },
    close: async () => {
      text.close();
      await broker.close();
    },
  };
});
