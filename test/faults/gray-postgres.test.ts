import { Redis } from 'ioredis';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RedisBroker } from '../../src/broker/redis.js';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { REDIS_URL, createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { Watch } from '../support/events.js';
import { pace, until } from '../support/wait.js';
import { askEverything, capturedLog, expectBounded, logSummary, startLogged, tryPublish } from './gray.js';

let database: TestDatabase;
let sql: postgres.Sql;
let redis: Redis;
let proxy: FaultProxy | null = null;
let service: Service | null = null;
let releaseLock: (() => Promise<void>) | null = null;
const watches: Watch[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
  redis = new Redis(REDIS_URL);
  process.on('unhandledRejection', onUnhandled);
});

afterEach(async () => {
  for (const watch of watches.splice(0)) watch.close();
  await releaseLock?.();
  releaseLock = null;
  proxy?.deliver();
  await service?.close();
  service = null;
  await proxy?.close();
  proxy = null;
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  redis?.disconnect();
  await sql?.end();
  await database?.drop();
});

interface World {
  service: Service;
  lines: string[];
  followed: BookProgress;
  /** In Redis, never polled here. */
  other: BookProgress;
  watch: Watch;
}

async function world(databaseUrl: string): Promise<World> {
  const { log, lines } = capturedLog();
  service = await startLogged({ REDIS_URL, DATABASE_URL: databaseUrl, SNAPSHOT_INTERVAL_MS: '300' }, log);
  const s = service;
  const followed = (await tryPublish(s.url, `followed-${Math.random().toString(36).slice(2, 10)}`, { status: 'GENERATING', generationStep: 'RESEARCH' }))!;
  expect((await fetch(`${s.url}/api/ai/progress/${followed.bookId}`)).status).toBe(200);
  await until(() => s.hub.stats().topics >= 1, 5_000, 'the polled book to be followed');
  const watch = new Watch(`${s.url}/api/ai/progress/${followed.bookId}/stream`);
  watches.push(watch);
  await watch.version(followed.version);
  const other = (await tryPublish(s.url, `other-${Math.random().toString(36).slice(2, 10)}`, { status: 'GENERATING', generationStep: 'OUTLINE' }))!;
  for (const book of [followed, other]) await until(async () => (await rowVersion(book.bookId)) === book.version, 5_000, 'the book in Postgres');
  return { service: s, lines, followed, other, watch };
}

async function rowVersion(bookId: string): Promise<number | undefined> {
  const [row] = await sql<Array<{ version: number }>>`select version from books where id = ${bookId}`;
  return row?.version;
}

/** During a Postgres fault: Redis answers for progress, the database's own endpoints answer 503, all within the bound. */
async function expectPostgresFaultAnswers(w: World, published: BookProgress[]): Promise<void> {
  const answers = await askEverything(w.service.url, { followed: w.followed.bookId, other: w.other.bookId });
  expectBounded(answers);
  expect(answers.pollFollowed.status).toBe(200);
  expect(answers.pollOther).toMatchObject({ status: 200, source: 'redis' });
  expect(answers.publishExisting.status).toBe(200);
  // A new book's first state: committed to Redis and queued for Postgres.
  expect(answers.publishNew.status).toBe(200);
  expect(answers.startBook).toMatchObject({ status: 503, code: 'database_unavailable' });
  expect(answers.listBooks).toMatchObject({ status: 503, code: 'database_unavailable' });
  expect(answers.stream.status).toBe(200);
  expect(answers.healthz.status).toBe(200);
  expect(w.service.snapshotter.stats.waitingForDatabase).toBeGreaterThan(0);
  published.push((await w.watch.next((s) => s.message === 'during the fault' && s.version > (published.at(-1)?.version ?? 0), 5_000))!);
}

/** After the fault: queued states drained, every book's last version in Postgres, the database's endpoints answer again. */
async function expectRecovery(w: World, during: BookProgress[]): Promise<void> {
  const s = w.service;
  await until(() => s.snapshotter.stats.waitingForDatabase === 0, 15_000, 'the queued states to reach Postgres');
  const startBook = () =>
    fetch(`${s.url}/api/books`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'After the fault', chapters: 1, sectionsPerChapter: 1 }) });
  await until(async () => (await startBook()).status === 201, 10_000, 'starting a book again');
  expect((await fetch(`${s.url}/api/books`)).status).toBe(200);
  const after = (await tryPublish(s.url, w.followed.bookId, { message: 'after the fault' }))!;
  expect((await w.watch.version(after.version)).message).toBe('after the fault');

  const keys = (s.broker as RedisBroker).keys;
  for (const book of [after, w.other]) {
    await until(async () => (await rowVersion(book.bookId)) === book.version, 10_000, `${book.bookId} at version ${book.version} in Postgres`);
  }
  // Every book, those first published during the fault among them, reaches Postgres at its version in Redis.
  await until(() => s.orchestrator.running === 0, 20_000, 'the books started to finish');
  for (const key of await redis.keys(`${keys.state('')}*`)) {
    const held = JSON.parse((await redis.get(key))!) as BookProgress;
    await until(async () => (await rowVersion(held.bookId)) === held.version, 10_000, `${held.bookId} at version ${held.version} in Postgres`);
  }
  expect(during.length).toBeGreaterThan(0);
  const { unhandled: bad, perKind } = logSummary(w.lines);
  expect(bad).toEqual([]);
  expect(unhandled).toEqual([]);
  for (const [kind, count] of perKind) expect(count, `log lines of ${kind}`).toBeLessThanOrEqual(4);
}

describe('Postgres behind a network path that drops every packet without a reset', () => {
  it('answers every request within 3 s (progress from Redis, 503 for what needs the database), then recovers once the path delivers', async () => {
    proxy = await FaultProxy.start(database.url);
    const w = await world(proxy.url(database.url));
    const during: BookProgress[] = [];

    const p = proxy;
    const endedBefore = p.ended;
    p.swallow();
    await expectPostgresFaultAnswers(w, during);
    await expectPostgresFaultAnswers(w, during);
    // The pool's connections that stopped answering were closed by the server, to be replaced.
    await until(() => p.ended > endedBefore, 5_000, 'stalled connections to be closed');

    p.deliver();
    await expectRecovery(w, during);
  });

  it('recovers the same way when the partition ends in a reset', async () => {
    proxy = await FaultProxy.start(database.url);
    const w = await world(proxy.url(database.url));
    const during: BookProgress[] = [];

    proxy.swallow();
    await expectPostgresFaultAnswers(w, during);
    proxy.reset();
    await expectRecovery(w, during);
  });
});

describe('the books table locked by another transaction (a migration, a long transaction)', () => {
  it('answers within 3 s, ends blocked snapshot rounds at the deadline with their books back in the dirty set, never overlaps rounds', async () => {
    const w = await world(database.url);
    const keys = (w.service.broker as RedisBroker).keys;
    const during: BookProgress[] = [];

    const locker = await sql.reserve();
    await locker`begin`;
    await locker`lock table books in access exclusive mode`;
    releaseLock = async () => {
      await locker`rollback`;
      locker.release();
    };
    const failuresBefore = w.service.snapshotter.stats.failures;

    await expectPostgresFaultAnswers(w, during);
    // A round took the changed books, waited on the lock until the deadline, and gave them back.
    await until(() => w.service.snapshotter.stats.failures > failuresBefore, 5_000, 'a snapshot round to fail on the lock');
    await until(async () => (await redis.sismember(keys.dirty(0), w.followed.bookId)) === 1, 5_000, 'the followed book back in the dirty set');
    await expectPostgresFaultAnswers(w, during);

    // Rounds slower than the 300 ms interval do not pile up: at most one snapshot upsert waits on the lock at a time.
    for (let i = 0; i < 10; i++) {
      const [row] = await sql<Array<{ waiting: number }>>`
        select count(*)::int as waiting from pg_stat_activity
        where datname = ${database.name} and wait_event_type = 'Lock' and query ilike '%jsonb_array_elements%'`;
      expect(row?.waiting).toBeLessThanOrEqual(1);
      await pace(200);
    }

    await releaseLock();
    releaseLock = null;
    await expectRecovery(w, during);
  });
});
