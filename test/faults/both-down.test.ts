import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';
import { startService } from '../../src/service.js';
import type { Service } from '../../src/service.js';
import { Gate, ScriptedGenerator } from '../orchestrator/generators.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { Watch } from '../support/events.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { RedisProcess } from '../support/redis-process.js';
import { silentLog, testConfig } from '../support/service.js';
import { until } from '../support/wait.js';

let database: TestDatabase;
let sql: postgres.Sql;
let redis: RedisProcess;
let proxy: FaultProxy;
let service: Service | null = null;
const watches: Watch[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 1, onnotice: () => {} });
  process.on('unhandledRejection', onUnhandled);
});
afterEach(async () => {
  for (const watch of watches.splice(0)) watch.close();
  proxy?.heal();
  await redis?.start();
  await service?.close();
  service = null;
  await proxy?.close();
  await redis?.stop();
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await sql?.end();
  await database?.drop();
});

/**
 * Redis and Postgres both go away in the middle of chapter 2, then come back one after the other.
 * The watcher reconnects to the same server, which resumes from whichever backend answers first.
 */
async function generateThroughDoubleOutage(healFirst: 'redis' | 'postgres'): Promise<void> {
  redis = await RedisProcess.start();
  proxy = await FaultProxy.start(database.url);
  const chapter2 = new Gate('chapter 2');
  service = await startService(testConfig({ REDIS_URL: redis.url, DATABASE_URL: proxy.url(database.url), SNAPSHOT_INTERVAL_MS: '200' }), silentLog, {
    generator: new ScriptedGenerator(10, { gates: { 'chapter 2': chapter2 } }),
  });
  const res = await fetch(`${service.url}/api/books`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ title: `Both down, ${healFirst} back first`, chapters: 3, sectionsPerChapter: 2 }),
  });
  const bookId = ((await res.json()) as { data: { bookId: string } }).data.bookId;
  const watch = new Watch(`${service.url}/api/ai/progress/${bookId}/stream`);
  watches.push(watch);
  await chapter2.arrival();
  await watch.next((s) => s.currentChapter === 2, 5_000, 'chapter 2 on the stream');

  await redis.stop();
  proxy.cut();
  chapter2.open();
  // With both down the poll endpoint cannot tell anything: a clear 503, never a 5xx of another kind.
  const poll = await fetch(`${service.url}/api/ai/progress/${bookId}`);
  expect([200, 503]).toContain(poll.status);
  if (poll.status === 503) expect(poll.headers.get('retry-after')).not.toBeNull();

  if (healFirst === 'redis') {
    await redis.start();
    proxy.heal();
  } else {
    proxy.heal();
    await redis.start();
  }

  const done = await watch.next((s) => s.status === 'COMPLETE', 30_000, 'COMPLETE after both came back');
  const states: BookProgress[] = watch.states;
  expect(states.some((s) => s.status === 'ERROR')).toBe(false);
  for (let i = 1; i < states.length; i++) {
    expect(states[i]!.version).toBeGreaterThan(states[i - 1]!.version);
    expect(states[i]!.overallProgress).toBeGreaterThanOrEqual(states[i - 1]!.overallProgress);
  }
  await until(async () => (await sql`select status, version from books where id = ${bookId}`)[0]?.status === 'COMPLETE', 10_000, 'COMPLETE in Postgres');
  const [row] = await sql`select version from books where id = ${bookId}`;
  expect(row?.version).toBe(done.version);
  const chapters = await sql`select number from chapters where book_id = ${bookId} order by number`;
  expect(chapters.map((c) => c.number)).toEqual([1, 2, 3]);
  expect(unhandled).toEqual([]);
}

describe('Redis and Postgres down at once', () => {
  it('Redis back first: the book completes, every chapter lands, nothing goes backwards', () => generateThroughDoubleOutage('redis'), 60_000);
  it('Postgres back first: the same', () => generateThroughDoubleOutage('postgres'), 60_000);
});
