import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../../src/broker/keys.js';
import type { Service } from '../../src/service.js';
import { createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { RedisProcess } from '../support/redis-process.js';
import { startTestService } from '../support/service.js';
import { until } from '../support/wait.js';

/** Two servers on a private Redis, so its command counters are ours alone. */
let redis: RedisProcess;
let admin: Redis;
let database: TestDatabase;
let poller: Service;
let publisher: Service;
let env: { REDIS_URL: string; REDIS_KEY_PREFIX: string; DATABASE_URL: string };

beforeAll(async () => {
  redis = await RedisProcess.start();
  admin = new Redis(redis.url);
  database = await createTestDatabase();
  env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: uniquePrefix(), DATABASE_URL: database.url };
  poller = await startTestService(env);
  publisher = await startTestService(env);
});
afterAll(async () => {
  await poller?.close();
  await publisher?.close();
  admin?.disconnect();
  await redis?.stop();
  await database?.drop();
});

async function redisReads(): Promise<number> {
  const stats = await admin.info('commandstats');
  const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
  return calls('get') + calls('mget');
}

/** Reads of Postgres by a process (its snapshot upserts left out). */
function databaseReads(service: Service): number {
  return service.store.stats.queries - service.store.stats.upsertStatements;
}

async function poll(id: string): Promise<{ version: number; source: string | null }> {
  const res = await fetch(`${poller.url}/api/ai/progress/${id}`);
  expect(res.status).toBe(200);
  const body = (await res.json()) as { data: { version: number } };
  return { version: body.data.version, source: res.headers.get('x-progress-source') };
}

describe('the poll endpoint for a book polled again and again', () => {
  it('answers from memory, never staler than what was published, from any process', async () => {
    const id = `hot-${Date.now()}`;
    await publisher.tracker.updateProgress(id, { status: 'GENERATING', message: 'v1' });
    expect(await poll(id)).toEqual({ version: 1, source: 'redis' });
    await until(async () => (await redisReads()) > 0 && poller.hub.stats().topics === 1, 5_000, 'the poller to follow the book');

    const readsBefore = await redisReads();
    for (let i = 0; i < 50; i++) expect(await poll(id)).toEqual({ version: 1, source: 'redis' });
    expect(await redisReads()).toBe(readsBefore);

    // Published through the other process: every later poll shows it, and polls never go back.
    let last = 1;
    for (let v = 2; v <= 20; v++) {
      await publisher.tracker.updateProgress(id, { message: `v${v}` });
      await until(
        async () => {
          const { version } = await poll(id);
          expect(version).toBeGreaterThanOrEqual(last);
          last = version;
          return version === v;
        },
        5_000,
        `a poll to show version ${v}`,
      );
    }
  });

  it('follows only books that exist: polling unknown ids leaves nothing behind', async () => {
    const topicsBefore = poller.hub.stats().topics;
    for (let i = 0; i < 100; i++) expect((await fetch(`${poller.url}/api/ai/progress/unknown-${i}-${Date.now()}`)).status).toBe(404);
    expect(poller.hub.stats().topics).toBe(topicsBefore);
  });

  it('reads a book only the database holds (its Redis state expired) from it once per 10 s, and shows a new run at once', async () => {
    const id = `expired-${Date.now()}`;
    const state = await publisher.tracker.updateProgress(id, { status: 'COMPLETE', message: 'done long ago' });
    await publisher.store.saveProgress([state]);
    await admin.del(redisKeys(env.REDIS_KEY_PREFIX).state(id));

    const readsBefore = databaseReads(poller);
    for (let i = 0; i < 20; i++) expect(await poll(id)).toEqual({ version: state.version, source: 'database' });
    expect(databaseReads(poller) - readsBefore).toBe(1);

    const next = await publisher.tracker.updateProgress(id, { status: 'GENERATING', message: 'again' });
    expect(await poll(id)).toEqual({ version: next.version, source: 'redis' });
  });

  it('reads an unknown book from the database once per 10 s, and shows it as soon as it is published', async () => {
    const id = `not-yet-${Date.now()}`;
    const readsBefore = databaseReads(poller);
    for (let i = 0; i < 10; i++) expect((await fetch(`${poller.url}/api/ai/progress/${id}`)).status).toBe(404);
    expect(databaseReads(poller) - readsBefore).toBe(1);

    const published = await publisher.tracker.updateProgress(id, { status: 'PLANNING', message: 'started' });
    expect(await poll(id)).toEqual({ version: published.version, source: 'redis' });
  });

  it('does not trust memory while Redis is down: polls come from the database', async () => {
    const id = `cold-${Date.now()}`;
    await publisher.tracker.updateProgress(id, { status: 'GENERATING', message: 'persisted' });
    await poll(id);
    await until(() => poller.hub.stats().topics >= 1 && poller.broker.isLive(), 5_000, 'the poller to follow the book');
    await redis.stop();
    await until(() => !poller.broker.isLive(), 5_000, 'the poller to notice');
    const res = await fetch(`${poller.url}/api/ai/progress/${id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-progress-source')).toBe('database');
    await redis.start();
    await until(() => poller.broker.isLive() && publisher.broker.isLive(), 15_000, 'both to reconnect');
  });
});
