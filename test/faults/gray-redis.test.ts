import { Redis } from 'ioredis';
import { DEFAULT_BACKEND_TIMEOUT_MS } from '../../src/config.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BrokerUnavailableError } from '../../src/broker/broker.js';
import { RedisBroker } from '../../src/broker/redis.js';
import type { BookProgress } from '../../src/progress/schema.js';
import { ProgressTracker } from '../../src/progress/tracker.js';
import type { Service } from '../../src/service.js';
import { createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { Watch } from '../support/events.js';
import { RedisProcess } from '../support/redis-process.js';
import { silentLog } from '../support/service.js';
import { until, withTimeout } from '../support/wait.js';
import { askEverything, capturedLog, expectBounded, logSummary, startLogged, tryPublish } from './gray.js';

let database: TestDatabase;
let redis: RedisProcess;
let admin: Redis;
let proxy: FaultProxy | null = null;
let service: Service | null = null;
const watches: Watch[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

beforeAll(async () => {
  database = await createTestDatabase();
  redis = await RedisProcess.start();
  admin = new Redis(redis.url);
  process.on('unhandledRejection', onUnhandled);
});

afterEach(async () => {
  for (const watch of watches.splice(0)) watch.close();
  await admin.client('UNPAUSE').catch(() => {});
  proxy?.deliver();
  await service?.close();
  service = null;
  await proxy?.close();
  proxy = null;
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  admin?.disconnect();
  await redis?.stop();
  await database?.drop();
});

interface World {
  service: Service;
  prefix: string;
  lines: string[];
  /** Polled once, so this process follows it; watched by `watch`. */
  followed: BookProgress;
  /** Published and snapshotted, never polled: a poll of it must go to Redis or Postgres. */
  others: BookProgress[];
  watch: Watch;
}

/** A server on the private Redis (through `redisUrl`), with books in each state a fault meets. */
async function world(redisUrl: string): Promise<World> {
  const { log, lines } = capturedLog();
  const prefix = uniquePrefix();
  service = await startLogged({ REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix, DATABASE_URL: database.url, SNAPSHOT_INTERVAL_MS: '300' }, log);
  const url = service.url;
  const followed = (await tryPublish(url, `followed-${Math.random().toString(36).slice(2, 10)}`, { status: 'GENERATING', generationStep: 'RESEARCH' }))!;
  expect(followed).not.toBeNull();
  expect((await fetch(`${url}/api/ai/progress/${followed.bookId}`)).status).toBe(200);
  const s = service;
  await until(() => s.hub.stats().topics >= 1, 5_000, 'the polled book to be followed');
  const watch = new Watch(`${url}/api/ai/progress/${followed.bookId}/stream`);
  watches.push(watch);
  await watch.version(followed.version);
  const others: BookProgress[] = [];
  for (let i = 0; i < 3; i++) {
    others.push((await tryPublish(url, `other-${i}-${Math.random().toString(36).slice(2, 10)}`, { status: 'GENERATING', generationStep: 'OUTLINE' }))!);
  }
  for (const other of others) await until(async () => (await s.store.getProgress(other.bookId))?.version === other.version, 5_000, 'the book in Postgres');
  return { service, prefix, lines, followed, others, watch };
}

/** During a Redis fault: what every kind of request answers. */
async function expectRedisFaultAnswers(w: World, other: BookProgress): Promise<void> {
  const answers = await askEverything(w.service.url, { followed: w.followed.bookId, other: other.bookId });
  expectBounded(answers);
  expect(answers.pollFollowed.status).toBe(200);
  expect(answers.pollOther).toMatchObject({ status: 200, source: 'database' });
  expect(answers.publishExisting).toMatchObject({ status: 503, code: 'broker_unavailable' });
  expect(answers.publishNew).toMatchObject({ status: 503, code: 'broker_unavailable' });
  // The book row is in Postgres; its first state waits for Redis in the background.
  expect(answers.startBook.status).toBe(201);
  expect(answers.listBooks.status).toBe(200);
  expect(answers.stream.status).toBe(200);
  expect(answers.healthz.status).toBe(200);
}

/** After the fault: publishing works again, the open stream gets it, Redis and then Postgres hold every book's last version. */
async function expectRecovery(w: World): Promise<void> {
  const { service: s, watch } = w;
  let after: BookProgress | null = null;
  await until(async () => (after = await tryPublish(s.url, w.followed.bookId, { message: 'after the fault' })) !== null, 15_000, 'a publish to succeed again');
  const last = after as unknown as BookProgress;
  expect(last.version).toBeGreaterThan(w.followed.version);
  // The stream opened before the fault stayed open and gets the update through the restored subscription.
  expect((await watch.version(last.version, 10_000)).message).toBe('after the fault');
  expect(watch.states.every((state, i) => i === 0 || state.version > watch.states[i - 1]!.version)).toBe(true);

  // Books started during the fault published their first state once Redis answered, and finished.
  await until(() => s.orchestrator.running === 0, 20_000, 'the books started during the fault to finish');

  const keys = (s.broker as RedisBroker).keys;
  for (const book of [last, ...w.others]) {
    const held = JSON.parse((await admin.get(keys.state(book.bookId))) ?? 'null') as BookProgress | null;
    expect(held?.version, `Redis holds ${book.bookId} at its last version`).toBe(book.version);
    await until(async () => (await s.store.getProgress(book.bookId))?.version === book.version, 5_000, `${book.bookId} at its last version in Postgres`);
  }
  const { unhandled: bad, perKind } = logSummary(w.lines);
  expect(bad).toEqual([]);
  expect(unhandled).toEqual([]);
  // One line per fault kind per 10 s, with a count: the whole fault fits in a few lines.
  for (const [kind, count] of perKind) expect(count, `log lines of ${kind}`).toBeLessThanOrEqual(4);
}

describe('Redis behind a network path that drops every packet without a reset', () => {
  it('answers every request within 3 s, then recovers by itself once the path delivers again', async () => {
    proxy = await FaultProxy.start(redis.url);
    const w = await world(proxy.url(redis.url));

    proxy.swallow();
    // At once (nothing has noticed yet) and once the broker has noticed.
    await expectRedisFaultAnswers(w, w.others[0]!);
    await until(() => !w.service.broker.isLive(), 5_000, 'the broker to notice');
    await expectRedisFaultAnswers(w, w.others[1]!);

    // Another process, whose path to Redis works, publishes meanwhile: this server misses the message.
    const elsewhere = new RedisBroker({ url: redis.url, keyPrefix: w.prefix, ttlSeconds: 600, log: silentLog, timeoutMs: DEFAULT_BACKEND_TIMEOUT_MS });
    try {
      expect(await elsewhere.ready(5_000)).toBe(true);
      const missed = await new ProgressTracker({ states: elsewhere }).updateProgress(w.followed.bookId, { message: 'published elsewhere during the fault' });
      proxy.deliver();
      // Resubscribed, the server hands its watchers the latest state of each book again.
      expect(await w.watch.version(missed.version, 10_000)).toEqual(missed);
      w.followed = missed;
    } finally {
      await elsewhere.close();
    }
    await expectRecovery(w);
  });

  it('recovers the same way when the partition ends in a reset', async () => {
    proxy = await FaultProxy.start(redis.url);
    const w = await world(proxy.url(redis.url));

    proxy.swallow();
    await expectRedisFaultAnswers(w, w.others[0]!);
    proxy.reset();
    await expectRecovery(w);
  });
});

describe('a Redis command that times out', () => {
  it('never leaves a reply paired with a later command: the connection is replaced', async () => {
    proxy = await FaultProxy.start(redis.url);
    const prefix = uniquePrefix();
    const broker = new RedisBroker({ url: proxy.url(redis.url), keyPrefix: prefix, ttlSeconds: 600, log: silentLog, timeoutMs: 300 });
    try {
      expect(await broker.ready(5_000)).toBe(true);
      const state = (bookId: string, version: number): BookProgress =>
        ({ bookId, status: 'GENERATING', generationStep: 'RESEARCH', currentChapter: 0, totalChapters: 0, currentSection: 0, totalSections: 0, overallProgress: 5, message: bookId, timestamp: 1, version }) as BookProgress;
      for (const [id, version] of [['a', 3], ['b', 7]] as const) await admin.set(broker.keys.state(id), JSON.stringify(state(id, version)));

      proxy.swallow();
      const started = performance.now();
      await expect(broker.get('a')).rejects.toBeInstanceOf(BrokerUnavailableError);
      expect(performance.now() - started).toBeLessThan(1_000);
      // The path heals: whatever was held (the GET of a, its reply) is delivered now.
      proxy.deliver();
      let b: BookProgress | null = null;
      await until(async () => (b = await broker.get('b').catch(() => null)) !== null, 5_000, 'a read of b to succeed');
      expect(b).toMatchObject({ bookId: 'b', version: 7 });
      expect(await withTimeout(broker.get('a'), 1_000, 'a read of a')).toMatchObject({ bookId: 'a', version: 3 });
    } finally {
      await broker.close();
    }
  });
});

describe('a paused Redis (CLIENT PAUSE, as during a failover)', () => {
  it('answers every request within 3 s while paused, and recovers when the pause ends', async () => {
    const w = await world(redis.url);
    await admin.client('PAUSE', '6000', 'ALL');
    const pausedAt = Date.now();

    await expectRedisFaultAnswers(w, w.others[0]!);
    await until(() => !w.service.broker.isLive(), 5_000, 'the broker to notice');
    await expectRedisFaultAnswers(w, w.others[1]!);
    expect(Date.now() - pausedAt).toBeLessThan(6_000); // all of it happened during the pause

    await expectRecovery(w);
  });
});
