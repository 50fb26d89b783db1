import { EventSource } from 'eventsource';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BookProgress, ProgressUpdate } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { Watch } from '../support/events.js';
import { RedisProcess } from '../support/redis-process.js';
import { startTestService } from '../support/service.js';
import { until } from '../support/wait.js';

let database: TestDatabase;
let redis: RedisProcess | null = null;
const services: Service[] = [];
const watches: Watch[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
});

afterEach(async () => {
  for (const watch of watches.splice(0)) watch.close();
  for (const service of services.splice(0)) await service.close();
  await redis?.stop();
  redis = null;
});

afterAll(async () => {
  await database?.drop();
});

/** A service on the test's own redis-server, with snapshots only when the test takes them. */
async function start(env: Record<string, string> = {}): Promise<Service> {
  redis ??= await RedisProcess.start();
  const service = await startTestService({ REDIS_URL: redis.url, DATABASE_URL: database.url, SNAPSHOT_INTERVAL_MS: '3600000', ...env });
  services.push(service);
  return service;
}

function watch(service: Service, id: string): Watch {
  const w = new Watch(`${service.url}/api/ai/progress/${id}/stream`);
  watches.push(w);
  return w;
}

let sequence = 0;
const uniqueBook = (label: string) => `${label}-${++sequence}-${Math.random().toString(36).slice(2, 8)}`;

/** Publishes once Redis answers again (the broker reconnects with backoff after a restart). */
async function publishWhenUp(service: Service, id: string, update: ProgressUpdate): Promise<BookProgress> {
  let state: BookProgress | null = null;
  await until(
    async () => {
      state = await service.tracker.updateProgress(id, update).catch(() => null);
      return state !== null;
    },
    10_000,
    `redis to take an update of ${id} again`,
  );
  return state!;
}

function expectIncreasing(states: readonly BookProgress[]): void {
  const versions = states.map((s) => s.version);
  expect(versions).toEqual([...new Set(versions)].sort((x, y) => x - y));
  const progress = states.map((s) => s.overallProgress);
  expect(progress).toEqual([...progress].sort((x, y) => x - y));
}

describe('Redis stopped', () => {
  it('polls answer from the database, open streams stay open and resume, new streams start from the database', async () => {
    const service = await start();
    const watched = uniqueBook('watched');
    const polled = uniqueBook('polled');
    for (const id of [watched, polled]) {
      await service.tracker.updateProgress(id, { status: 'GENERATING', generationStep: 'RESEARCH', totalChapters: 4 });
      await service.tracker.updateProgress(id, { generationStep: 'OUTLINE' });
    }
    expect(await service.snapshotter.snapshot()).toBe(2);
    // One more version that only Redis holds: what the database answers is recognisably older.
    for (const id of [watched, polled]) await service.tracker.updateProgress(id, { generationStep: 'STRUCTURE' });

    const open = watch(service, watched);
    await open.version(3);

    await redis!.stop();

    const res = await fetch(`${service.url}/api/ai/progress/${polled}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-progress-source')).toBe('database');
    const body = (await res.json()) as { success: boolean; data: BookProgress };
    expect(body.data).toMatchObject({ bookId: polled, version: 2, generationStep: 'OUTLINE' });

    const late = watch(service, polled);
    const first = await late.next(() => true, 5_000, 'the database snapshot on a stream opened while Redis is down');
    expect(first).toMatchObject({ version: 2, generationStep: 'OUTLINE' });

    expect(open.source.readyState).toBe(EventSource.OPEN);
    expect(open.errors).toBe(0);

    await redis!.start();
    const resumed = await publishWhenUp(service, watched, { generationStep: 'CHAPTERS', currentChapter: 1 });
    expect(resumed.version).toBeGreaterThan(3);
    await open.version(resumed.version, 10_000);
    expect(open.last).toEqual(resumed);
    expect(open.errors).toBe(0);
    expectIncreasing(open.states);

    const next = await publishWhenUp(service, polled, { generationStep: 'CHAPTERS', currentChapter: 1 });
    await late.version(next.version, 10_000);
    expect(late.states.map((s) => s.version)).toEqual([2, next.version]);

    const back = await fetch(`${service.url}/api/ai/progress/${watched}`);
    expect(back.headers.get('x-progress-source')).toBe('redis');
    expect(((await back.json()) as { data: BookProgress }).data).toEqual(resumed);
  });
});

describe('Redis restarted empty', () => {
  it('a process that never saw the book continues versions above the last persisted one', async () => {
    const prefix = uniquePrefix();
    const first = await start({ REDIS_KEY_PREFIX: prefix });
    const id = uniqueBook('restarted');
    let last: BookProgress | null = null;
    for (let chapter = 1; chapter <= 5; chapter++) {
      last = await first.tracker.updateProgress(id, { status: 'GENERATING', generationStep: 'CHAPTERS', totalChapters: 8, currentChapter: chapter, message: `chapter ${chapter}` });
    }
    await first.snapshotter.snapshot();
    expect(await first.store.getProgress(id)).toEqual(last);
    services.splice(services.indexOf(first), 1);
    await first.close();

    await redis!.stop();
    await redis!.start();

    // A fresh process: no memory of the book, only the database.
    const second = await start({ REDIS_KEY_PREFIX: prefix });
    const next = await publishWhenUp(second, id, { currentChapter: 6, message: 'chapter 6' });
    expect(next.version).toBe(last!.version + 1);
    expect(next).toMatchObject({ status: 'GENERATING', generationStep: 'CHAPTERS', totalChapters: 8, currentChapter: 6 });
    expect(next.overallProgress).toBeGreaterThan(last!.overallProgress);
    expect(next.startTime).toBe(last!.startTime);
  });

  it('the process that published the book continues from its last state even when the database is behind', async () => {
    const service = await start();
    const id = uniqueBook('behind');
    await service.tracker.updateProgress(id, { status: 'GENERATING', generationStep: 'RESEARCH', totalChapters: 8 });
    await service.snapshotter.snapshot();
    let seen: BookProgress | null = null;
    for (let chapter = 1; chapter <= 4; chapter++) {
      seen = await service.tracker.updateProgress(id, { generationStep: 'CHAPTERS', currentChapter: chapter, message: `chapter ${chapter}` });
    }
    const stream = watch(service, id);
    await stream.version(seen!.version);

    await redis!.stop();
    await redis!.start();

    // The pipeline's next update names only what changed.
    const next = await publishWhenUp(service, id, { currentSection: 1, totalSections: 3, message: 'chapter 4, section 1' });
    expect(next.version).toBeGreaterThan(seen!.version);
    expect(next).toMatchObject({ status: 'GENERATING', generationStep: 'CHAPTERS', totalChapters: 8, currentChapter: 4, startTime: seen!.startTime });
    expect(next.overallProgress).toBeGreaterThanOrEqual(seen!.overallProgress);
    await stream.version(next.version, 10_000);
    expectIncreasing(stream.states);
  });
});
