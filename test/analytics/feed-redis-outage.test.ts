import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BookTimeline } from '../../src/analytics/queries.js';
import { startService } from '../../src/service.js';
import type { Service } from '../../src/service.js';
import { Gate, ScriptedGenerator } from '../orchestrator/generators.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { Watch } from '../support/events.js';
import { RedisProcess } from '../support/redis-process.js';
import { silentLog, testConfig } from '../support/service.js';
import { until } from '../support/wait.js';

let database: TestDatabase;
let redis: RedisProcess;
let service: Service;
const chapter3 = new Gate('chapter 3');

beforeAll(async () => {
  database = await createTestDatabase();
  redis = await RedisProcess.start();
  service = await startService(testConfig({ REDIS_URL: redis.url, DATABASE_URL: database.url, SNAPSHOT_INTERVAL_MS: '60000' }), silentLog, {
    generator: new ScriptedGenerator(15, { gates: { 'chapter 3': chapter3 } }),
  });
});
afterAll(async () => {
  chapter3.open();
  await service?.close();
  await redis?.stop();
  await database?.drop();
});

describe('a run interrupted by a Redis outage', () => {
  it('still records its steps and chapters', async () => {
    const res = await fetch(`${service.url}/api/books`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Through an outage', chapters: 5, sectionsPerChapter: 2 }) });
    const bookId = ((await res.json()) as { data: { bookId: string } }).data.bookId;
    await chapter3.arrival();
    await redis.stop();
    await redis.start();
    // Chapter 3 is written once Redis takes commits again and the run's publisher has caught up
    // (while Redis is away it merges the updates it cannot send: no state would show them).
    await until(async () => {
      try {
        await service.tracker.updateProgress(`probe-${bookId}`, { message: 'probe' });
        return true;
      } catch {
        return false;
      }
    }, 20_000, 'Redis taking commits again');
    const watch = new Watch(`${service.url}/api/ai/progress/${bookId}/stream`);
    await watch.next((s) => s.currentChapter >= 3, 20_000, 'chapter 3 shown');
    chapter3.open();
    await watch.next((s) => s.status === 'COMPLETE', 30_000, 'COMPLETE');
    watch.close();
    await service.timelines.flush();
    const answer = await fetch(`${service.url}/api/books/${bookId}/timeline`);
    expect(answer.status).toBe(200);
    const recorded = ((await answer.json()) as { data: Omit<BookTimeline, 'tenant'> }).data;
    expect(recorded.status).toBe('COMPLETE');
    const steps = recorded.steps.map((s) => s.step);
    expect(steps).toEqual(expect.arrayContaining(['PLANNING', 'RESEARCH', 'CHAPTERS', 'PROOFREADING']));
    for (const step of recorded.steps) expect(step.endedAt).not.toBeNull();
    // Chapters before the outage exactly; those after it too (exact or not, as the states showed them).
    expect(recorded.chapters.map((c) => c.chapter)).toEqual([1, 2, 3, 4, 5]);
    expect(recorded.chapters.slice(0, 2).every((c) => c.exact)).toBe(true);
  }, 60_000);
});
