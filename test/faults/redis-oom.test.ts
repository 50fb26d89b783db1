import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RedisBroker } from '../../src/broker/redis.js';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { RedisProcess } from '../support/redis-process.js';
import { until } from '../support/wait.js';
import { ANSWER_BOUND_MS, capturedLog, logSummary, startLogged, tryPublish } from './gray.js';

let database: TestDatabase;
const redises: RedisProcess[] = [];
const clients: Redis[] = [];
let service: Service | null = null;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

beforeAll(async () => {
  database = await createTestDatabase();
  process.on('unhandledRejection', onUnhandled);
});

afterEach(async () => {
  await service?.close();
  service = null;
  for (const client of clients.splice(0)) client.disconnect();
  for (const redis of redises.splice(0)) await redis.stop();
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await database?.drop();
});

async function privateRedis(args: string[]): Promise<{ redis: RedisProcess; admin: Redis }> {
  const redis = await RedisProcess.start(null, args);
  redises.push(redis);
  const admin = new Redis(redis.url);
  clients.push(admin);
  return { redis, admin };
}

/** Fills Redis with keys of its own until it refuses a write: from then on it is at maxmemory. */
async function fill(admin: Redis): Promise<number> {
  const filler = 'x'.repeat(64 * 1024);
  for (let i = 0; ; i++) {
    try {
      await admin.set(`filler:${i}`, filler);
    } catch (error) {
      expect((error as Error).message).toMatch(/^OOM/);
      return i;
    }
  }
}

async function metric(url: string, line: RegExp): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = text.split('\n').find((l) => line.test(l));
  return match ? Number(match.slice(match.lastIndexOf(' ') + 1)) : 0;
}

describe('Redis at maxmemory with noeviction', () => {
  it('refuses commits with 503 broker_full and Retry-After (never a 500), counts them, and recovers when memory frees', async () => {
    const { redis, admin } = await privateRedis(['--maxmemory', '3mb', '--maxmemory-policy', 'noeviction']);
    const { log, lines } = capturedLog();
    service = await startLogged({ REDIS_URL: redis.url, DATABASE_URL: database.url, SNAPSHOT_INTERVAL_MS: '300' }, log);
    const url = service.url;
    const books = Array.from({ length: 40 }, (_, i) => `oom-${i}-${Math.random().toString(36).slice(2, 8)}`);
    const last = new Map<string, BookProgress>();
    for (const id of books) last.set(id, (await tryPublish(url, id, { status: 'GENERATING', generationStep: 'RESEARCH' }))!);

    const fillers = await fill(admin);
    expect(fillers).toBeGreaterThan(0);

    // 40 publishes at a time, each answered within the bound: a 200, or a 503 broker_full with Retry-After.
    const statuses = new Map<string, number>();
    let slowest = 0;
    const publishRounds = async (rounds: number) => {
      for (let round = 0; round < rounds; round++) {
        await Promise.all(
          books.map(async (id) => {
            const started = performance.now();
            const res = await fetch(`${url}/api/ai/progress/${id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: `round ${round}` }) });
            slowest = Math.max(slowest, performance.now() - started);
            const body = (await res.json()) as { data?: BookProgress; error?: { code: string } };
            if (body.data && body.data.version > last.get(id)!.version) last.set(id, body.data);
            const key = `${res.status} ${body.error?.code ?? ''}`.trim();
            statuses.set(key, (statuses.get(key) ?? 0) + 1);
            if (res.status === 503) expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
          }),
        );
      }
    };
    // Right at the limit memory hovers (a refused write frees its buffer), so some commits land.
    await publishRounds(50);
    expect([...statuses.keys()].filter((key) => key !== '200' && key !== '503 broker_full')).toEqual([]);
    // Well over it (as when something else filled Redis), every commit is refused.
    const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1]);
    await admin.config('SET', 'maxmemory', String(used - 256 * 1024));
    statuses.clear();
    await publishRounds(50);
    expect(Object.fromEntries(statuses)).toEqual({ '503 broker_full': 2_000 });
    expect(slowest).toBeLessThan(ANSWER_BOUND_MS);
    expect(await metric(url, /^booksai_backend_faults_total\{kind="redis_full"\}/)).toBeGreaterThanOrEqual(2_000);

    // Reads still answer from Redis; a book started now is created, its first state waits for memory.
    const polled = await fetch(`${url}/api/ai/progress/${books[0]}`);
    expect(polled.status).toBe(200);
    expect(polled.headers.get('x-progress-source')).toBe('redis');
    const started = await fetch(`${url}/api/books`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Started while Redis is full', chapters: 2, sectionsPerChapter: 1 }) });
    expect(started.status).toBe(201);
    const { bookId } = ((await started.json()) as { data: { bookId: string } }).data;
    expect((await fetch(`${url}/healthz`)).status).toBe(200);

    // Memory frees: publishing works again, the book started meanwhile completes (never failed).
    await admin.config('SET', 'maxmemory', '3mb');
    for (let i = 0; i < fillers; i++) await admin.del(`filler:${i}`);
    let after: BookProgress | null = null;
    await until(async () => (after = await tryPublish(url, books[0]!, { message: 'after the fault' })) !== null, 10_000, 'a publish to succeed again');
    expect((after as unknown as BookProgress).version).toBe(last.get(books[0]!)!.version + 1);
    expect(await service.orchestrator.settled(bookId)).toBe('COMPLETE');

    // No committed state was lost: Redis and, after a round, Postgres hold each book's last version.
    const keys = (service.broker as RedisBroker).keys;
    const s = service;
    for (const id of books.slice(1)) {
      const held = JSON.parse((await admin.get(keys.state(id)))!) as BookProgress;
      expect(held).toEqual(last.get(id));
      await until(async () => (await s.store.getProgress(id))?.version === held.version, 5_000, `${id} in Postgres`);
    }
    const done = await s.store.getProgress(bookId);
    expect(done?.status).toBe('COMPLETE');

    const { unhandled: bad, perKind } = logSummary(lines);
    expect(bad).toEqual([]);
    expect(unhandled).toEqual([]);
    // Thousands of refusals, a handful of lines.
    expect(perKind.get('redis_full')).toBeLessThanOrEqual(3);
  });
});

describe('the maxmemory-policy read at start', () => {
  it('warns when Redis may evict keys without a TTL (allkeys-*), and not for noeviction', async () => {
    for (const [policy, warns] of [
      ['allkeys-lru', true],
      ['noeviction', false],
      ['volatile-lru', false],
    ] as const) {
      const { redis } = await privateRedis(['--maxmemory', '64mb', '--maxmemory-policy', policy]);
      const { log, lines } = capturedLog();
      service = await startLogged({ REDIS_URL: redis.url, DATABASE_URL: database.url }, log);
      const warned = () => lines.some((line) => line.includes('"maxmemoryPolicy"') && line.includes(policy));
      if (warns) await until(warned, 5_000, `a warning about ${policy}`);
      else {
        // The check runs on the first ready connection, before a publish can be answered.
        expect(await tryPublish(service.url, `policy-${policy}`, { message: 'x' })).not.toBeNull();
        expect(warned()).toBe(false);
      }
      await service.close();
      service = null;
    }
  });
});
