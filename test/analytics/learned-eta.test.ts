import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBroker } from '../../src/broker/redis.js';
import { estimateEnd } from '../../src/progress/derive.js';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { REDIS_URL, uniquePrefix } from '../support/backends.js';
import { silentLog, startServer } from '../support/service.js';
import { pace, until } from '../support/wait.js';
import { simulateRun } from './runs.js';

const prefix = uniquePrefix();
let service: Service;

beforeAll(async () => {
  service = await startServer({ REDIS_KEY_PREFIX: prefix, SNAPSHOT_INTERVAL_MS: '60000' });
});
afterAll(async () => {
  await service?.close();
});

/** Steps outside CHAPTERS take most of the time, though the bar gives them 35 %: the linear estimate is far off. */
const STEP_MS = 150;
const SECTION_MS = 20;

describe('the learned ETA on a running server', () => {
  it('is the linear estimate without history, and beats it on a run once history exists', async () => {
    const first = await service.tracker.updateProgress(`eta-none-${Date.now()}`, { status: 'GENERATING', generationStep: 'RESEARCH', totalChapters: 2, totalSections: 2 });
    expect(await service.eta.refresh()).toBeNull();
    expect(first.estimatedEndTimeLate).toBeUndefined();

    // History: seven runs of the same shape, recorded from a worker writing straight into Redis.
    const worker = new RedisBroker({ url: REDIS_URL, keyPrefix: prefix, ttlSeconds: 600, log: silentLog, timeoutMs: 2_000 });
    const books: string[] = [];
    try {
      await worker.ready(5_000);
      for (let i = 0; i < 7; i++) {
        const bookId = `eta-history-${i}-${Date.now()}`;
        books.push(bookId);
        let previous: BookProgress | null = null;
        for (const state of simulateRun(bookId, { chapters: 2, sections: 2, stepMs: STEP_MS + (i % 3) * 5, sectionMs: SECTION_MS, start: Date.now() - 600_000 + i * 10_000 })) {
          await worker.commit(state, previous?.version ?? null);
          previous = state;
        }
      }
    } finally {
      await worker.close();
    }
    await until(async () => {
      await service.timelines.flush();
      return ((await service.eta.refresh())?.runs ?? 0) >= 7;
    }, 10_000, 'the model to learn from seven runs');

    // A new run published through the tracker, paced as the history was.
    const bookId = `eta-run-${Date.now()}`;
    const states: BookProgress[] = [];
    const publish = async (update: Parameters<Service['tracker']['updateProgress']>[1]) => void states.push(await service.tracker.updateProgress(bookId, update));
    await publish({ status: 'PLANNING', generationStep: 'PLANNING', totalChapters: 2, totalSections: 2, currentChapter: 0, currentSection: 0 });
    for (const step of ['RESEARCH', 'OUTLINE', 'STRUCTURE'] as const) {
      await pace(STEP_MS);
      await publish({ status: 'GENERATING', generationStep: step });
    }
    await pace(STEP_MS);
    for (let c = 1; c <= 2; c++) {
      for (let s = 0; s < 2; s++) {
        await publish({ generationStep: 'CHAPTERS', currentChapter: c, currentSection: s });
        await pace(SECTION_MS);
      }
    }
    await publish({ currentChapter: 2, currentSection: 2 });
    await publish({ generationStep: 'PROOFREADING' });
    await pace(STEP_MS);
    await publish({ status: 'COMPLETE' });
    const end = states.at(-1)!.timestamp;

    // At RESEARCH, OUTLINE and STRUCTURE (10-50 % of the run): the learned end is nearer than the linear one.
    let learnedError = 0;
    let linearError = 0;
    for (const state of states.filter((s) => ['RESEARCH', 'OUTLINE', 'STRUCTURE'].includes(s.generationStep))) {
      expect(state.estimatedEndTime).toBeDefined();
      expect(state.estimatedEndTimeLate).toBeGreaterThanOrEqual(state.estimatedEndTime!);
      const linear = estimateEnd(state.startTime!, state.timestamp, state.overallProgress)!;
      learnedError += Math.abs(state.estimatedEndTime! - end);
      linearError += Math.abs(linear - end);
    }
    expect(learnedError).toBeLessThan(0.5 * linearError);
    expect(states.at(-1)).toMatchObject({ status: 'COMPLETE', estimatedEndTime: end });
  }, 30_000);
});
