import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BookTimeline } from '../../src/analytics/queries.js';
import { RedisBroker } from '../../src/broker/redis.js';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { REDIS_URL, uniquePrefix } from '../support/backends.js';
import { Watch } from '../support/events.js';
import { silentLog, startServer } from '../support/service.js';
import { pace } from '../support/wait.js';
import { simulateRun } from './runs.js';

const prefix = uniquePrefix();
let service: Service;

beforeAll(async () => {
  // Long snapshot rounds: what reaches run_timelines comes from the every-book feed.
  service = await startServer({ REDIS_KEY_PREFIX: prefix, SNAPSHOT_INTERVAL_MS: '60000', DEMO_STEP_MS: '15' });
});
afterAll(async () => {
  await service?.close();
});

type Shown = Omit<BookTimeline, 'tenant'>;

async function timeline(bookId: string): Promise<Shown> {
  const res = await fetch(`${service.url}/api/books/${bookId}/timeline`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: Shown }).data;
}

/** Flushes the feed and reports the statements and batches it took. */
async function flushed(): Promise<{ statements: number; batches: number }> {
  const before = { statements: service.timelines.statements, batches: service.timelines.stats.batches };
  await service.timelines.flush();
  return { statements: service.timelines.statements - before.statements, batches: service.timelines.stats.batches - before.batches };
}

const WORK_STEPS: string[] = ['PLANNING', 'RESEARCH', 'OUTLINE', 'STRUCTURE', 'CHAPTERS', 'PROOFREADING'];

describe('run timelines on a running server, whoever publishes', () => {
  it('records a demo orchestrator run: every step and chapter with its duration', async () => {
    const res = await fetch(`${service.url}/api/books`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Recorded', chapters: 3, sectionsPerChapter: 2 }) });
    const bookId = ((await res.json()) as { data: { bookId: string } }).data.bookId;
    const watch = new Watch(`${service.url}/api/ai/progress/${bookId}/stream`);
    const done = await watch.next((s) => s.status === 'COMPLETE', 20_000, 'COMPLETE');
    watch.close();
    await flushed();
    const recorded = await timeline(bookId);
    expect(recorded.status).toBe('COMPLETE');
    expect(recorded.durationMs).toBe(done.timestamp - done.startTime!);
    // In order; a step may be missing (the publisher merges an update queued behind one in flight, e.g. STRUCTURE into CHAPTERS).
    const steps: string[] = recorded.steps.map((s) => s.step);
    expect(steps).toEqual(WORK_STEPS.filter((s) => steps.includes(s)));
    expect(steps).toEqual(expect.arrayContaining(['PLANNING', 'RESEARCH', 'CHAPTERS', 'PROOFREADING']));
    for (const step of recorded.steps) expect(step.durationMs).toBeGreaterThanOrEqual(0);
    expect(recorded.chapters.map((c) => [c.chapter, c.sections.length, c.endedAt !== null])).toEqual([
      [1, 2, true],
      [2, 2, true],
      [3, 2, true],
    ]);
  });

  it('records an HTTP publisher\'s run, many updates in a few statements', async () => {
    const bookId = `http-${prefix.replace(/\W/g, '')}`.slice(0, 60);
    const send = async (update: Record<string, unknown>) => {
      const res = await fetch(`${service.url}/api/ai/progress/${bookId}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(update) });
      expect(res.status).toBe(200);
    };
    await service.timelines.flush();
    let updates = 0;
    await send({ status: 'PLANNING', generationStep: 'PLANNING', totalChapters: 2, totalSections: 2 });
    for (const step of ['RESEARCH', 'OUTLINE', 'STRUCTURE']) {
      await pace(20);
      await send({ status: 'GENERATING', generationStep: step });
      updates++;
    }
    for (let c = 1; c <= 2; c++) {
      for (let s = 0; s <= 2; s++) {
        await pace(10);
        await send({ generationStep: 'CHAPTERS', currentChapter: c, currentSection: s });
        updates++;
      }
    }
    await send({ generationStep: 'PROOFREADING' });
    await pace(20);
    await send({ status: 'COMPLETE' });
    updates += 2;
    const { statements, batches } = await flushed();
    // Three statements a batch at most (read the runs, insert spans, upsert runs), never one per update.
    expect(batches).toBeGreaterThanOrEqual(1);
    expect(statements).toBeLessThanOrEqual(3 * batches);
    expect(statements).toBeLessThan(updates);
    const recorded = await timeline(bookId);
    expect(recorded.status).toBe('COMPLETE');
    expect(recorded.steps.map((s) => s.step)).toEqual(WORK_STEPS);
    for (const step of recorded.steps.filter((s) => ['PLANNING', 'RESEARCH', 'OUTLINE', 'PROOFREADING'].includes(s.step))) expect(step.durationMs).toBeGreaterThanOrEqual(15);
    expect(recorded.chapters.map((c) => c.sections.length)).toEqual([2, 2]);
  });

  it('records a worker writing straight into Redis, with the exact durations of its commits', async () => {
    const worker = new RedisBroker({ url: REDIS_URL, keyPrefix: prefix, ttlSeconds: 600, log: silentLog, timeoutMs: 2_000 });
    try {
      await worker.ready(5_000);
      const books = ['worker-a', 'worker-b', 'worker-c'].map((b) => `${b}-${Date.now()}`);
      const shape = { chapters: 3, sections: 2, stepMs: 1_000, sectionMs: 500, start: Date.now() - 3_600_000 };
      await service.timelines.flush();
      let commits = 0;
      for (const bookId of books) {
        let previous: BookProgress | null = null;
        for (const state of simulateRun(bookId, shape)) {
          const result = await worker.commit(state, previous?.version ?? null);
          expect(result.committed).toBe(true);
          previous = state;
          commits++;
        }
      }
      // The feed delivers asynchronously: wait until the last commit has arrived, then write.
      const lastVersion = simulateRun(books[2]!, shape).at(-1)!.version;
      const { until } = await import('../support/wait.js');
      await until(async () => {
        await service.timelines.flush();
        const res = await fetch(`${service.url}/api/books/${books[2]}/timeline`);
        if (res.status !== 200) return false;
        const data = ((await res.json()) as { data: Shown }).data;
        return data.status === 'COMPLETE';
      }, 10_000, 'the worker runs recorded');
      expect(service.timelines.statements).toBeLessThan(commits + 100);
      expect(lastVersion).toBeGreaterThan(10);
      for (const bookId of books) {
        const recorded = await timeline(bookId);
        expect(recorded.steps.map((s) => [s.step, s.durationMs, s.exact])).toEqual([
          ['PLANNING', 1_000, true],
          ['RESEARCH', 1_000, true],
          ['OUTLINE', 1_000, true],
          ['STRUCTURE', 1_000, true],
          ['CHAPTERS', 3_000, true],
          ['PROOFREADING', 1_000, true],
        ]);
        expect(recorded.durationMs).toBe(8_000);
        for (const chapter of recorded.chapters) {
          expect(chapter.durationMs).toBe(1_000);
          expect(chapter.sections.map((s) => s.durationMs)).toEqual([500, 500]);
        }
      }
    } finally {
      await worker.close();
    }
  });

  it('feeds booksai_step_duration_seconds and booksai_run_duration_seconds', async () => {
    const text = await (await fetch(`${service.url}/metrics`)).text();
    const count = (name: string, label: string) => Number(new RegExp(`^${name}_count\\{${label}\\} (\\d+)`, 'm').exec(text)?.[1] ?? 'NaN');
    expect(count('booksai_run_duration_seconds', 'status="COMPLETE"')).toBe(5);
    expect(count('booksai_step_duration_seconds', 'step="RESEARCH"')).toBe(5);
    expect(count('booksai_step_duration_seconds', 'step="PROOFREADING"')).toBe(5);
    // The worker's three runs took 8 s each: in the (5, 10] bucket.
    const le10 = Number(/^booksai_run_duration_seconds_bucket\{le="10",status="COMPLETE"\} (\d+)/m.exec(text)?.[1]);
    const le5 = Number(/^booksai_run_duration_seconds_bucket\{le="5",status="COMPLETE"\} (\d+)/m.exec(text)?.[1]);
    expect(le10 - le5).toBe(3);
  });
});
