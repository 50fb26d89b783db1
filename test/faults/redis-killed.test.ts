import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService } from '../../src/service.js';
import type { Service } from '../../src/service.js';
import { Gate, ScriptedGenerator } from '../orchestrator/generators.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { Watch } from '../support/events.js';
import { RedisProcess } from '../support/redis-process.js';
import { silentLog, testConfig } from '../support/service.js';
import { pace, until } from '../support/wait.js';

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

describe('Redis killed mid-generation and restarted empty', () => {
  it('pollers get 200 all the way and never go back; watchers end on COMPLETE; every chapter is in Postgres', async () => {
    const res = await fetch(`${service.url}/api/books`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Through a Redis restart', chapters: 5, sectionsPerChapter: 2 }),
    });
    const bookId = ((await res.json()) as { data: { bookId: string } }).data.bookId;
    const watch = new Watch(`${service.url}/api/ai/progress/${bookId}/stream`);

    // A client that polls instead of streaming, every 20 ms from the first state to the last.
    const polls: Array<{ status: number; version: number; progress: number }> = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const answer = await fetch(`${service.url}/api/ai/progress/${bookId}`);
        const body = answer.status === 200 ? ((await answer.json()) as { data: { version: number; overallProgress: number } }).data : null;
        polls.push({ status: answer.status, version: body?.version ?? -1, progress: body?.overallProgress ?? -1 });
        await pace(20);
      }
    })();

    await chapter3.arrival();
    await until(() => polls.some((p) => p.status === 200), 5_000, 'the poller to see the book');
    await redis.stop();
    const pollsBeforeRestart = polls.length;
    await until(() => polls.length > pollsBeforeRestart + 5, 5_000, 'polls while Redis is down');
    await redis.start();
    chapter3.open();

    const done = await watch.next((s) => s.status === 'COMPLETE', 30_000, 'COMPLETE on the stream');
    await until(() => polls.at(-1)?.version === done.version, 10_000, 'the poller to see COMPLETE');
    polling = false;
    await poller;
    watch.close();

    expect(polls.filter((p) => p.status !== 200)).toEqual([]);
    for (let i = 1; i < polls.length; i++) {
      expect(polls[i]!.version).toBeGreaterThanOrEqual(polls[i - 1]!.version);
      expect(polls[i]!.progress).toBeGreaterThanOrEqual(polls[i - 1]!.progress);
    }
    const versions = watch.states.map((s) => s.version);
    expect(versions).toEqual([...new Set(versions)].sort((a, b) => a - b));
    expect(watch.states.some((s) => s.status === 'ERROR')).toBe(false);

    const sql = postgres(database.url, { max: 1, onnotice: () => {} });
    try {
      expect((await sql`select number from chapters where book_id = ${bookId} order by number`).map((r) => r.number)).toEqual([1, 2, 3, 4, 5]);
      await until(async () => (await sql`select status from books where id = ${bookId}`)[0]?.status === 'COMPLETE', 10_000, 'COMPLETE in Postgres');
    } finally {
      await sql.end();
    }
  }, 60_000);
});
