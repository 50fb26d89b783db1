import { Redis } from 'ioredis';
import { pino } from 'pino';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';
import { startService } from '../../src/service.js';
import type { Service } from '../../src/service.js';
import { Gate, ScriptedGenerator } from '../orchestrator/generators.js';
import type { Scripted } from '../orchestrator/generators.js';
import { REDIS_URL, createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { RedisProcess } from '../support/redis-process.js';
import { testConfig } from '../support/service.js';
import { teardownAfterEach } from '../support/teardown.js';
import { TEST_SECRET, bearer, mintToken } from '../support/tokens.js';
import { until, watchForAbsence, withTimeout } from '../support/wait.js';

/**
 * The orchestrator's runs through backend outages: a claim is kept (not handed back in a loop)
 * while the book's state cannot be read, every run writes as its book's tenant, a cancel answers
 * within a bound while Redis hangs, a cancel after the book ended keeps its state, and a run
 * stopped while Postgres is away is not a crash.
 */

const STEP_MS = 5;
const READ_WRITE = 'progress:read progress:write books:write';

let database: TestDatabase;
let sql: postgres.Sql;
const teardown = teardownAfterEach();

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  await sql?.end();
  await database?.drop();
});

/** A service with the scripted generator; `lines` gets what it logs at warn and above. */
async function start(env: Record<string, string>, script: Scripted = {}): Promise<{ service: Service; lines: string[] }> {
  for (const gate of Object.values(script.gates ?? {})) teardown.gate(gate);
  const lines: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
  const config = testConfig({ DATABASE_URL: database.url, SNAPSHOT_INTERVAL_MS: '500', ...env });
  const service = teardown.service(await startService(config, log, { generator: new ScriptedGenerator(STEP_MS, script) }));
  return { service, lines };
}

function stop(service: Service): Promise<void> {
  return teardown.close(service);
}

async function post(url: string, path: string, token?: string, body?: unknown): Promise<{ status: number; ms: number; body: { success: boolean; data?: unknown; error?: { code: string } } }> {
  const began = Date.now();
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: token ? bearer(token, { 'content-type': 'application/json' }) : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as never, ms: Date.now() - began };
}

async function get(url: string, token?: string): Promise<{ status: number; body: { data?: unknown } }> {
  const res = await fetch(url, { headers: token ? bearer(token) : {} });
  return { status: res.status, body: (await res.json()) as never };
}

async function runOf(bookId: string): Promise<{ state: string; epoch: number; claims: number } | undefined> {
  const [row] = await sql<Array<{ state: string; epoch: number; claims: number }>>`select state, epoch, claims from runs where book_id = ${bookId}`;
  return row;
}

describe('runs through backend outages', () => {
  it('Redis down when queued books are claimed: the claims are kept (no claim/release loop, a few log lines); once Redis is back the books complete as their tenant’s', async () => {
    const redis = teardown.process(await RedisProcess.start());
    const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: uniquePrefix(), AUTH_JWT_SECRET: TEST_SECRET, RUN_LEASE_MS: '3000' };
    const front = await start({ ...env, MAX_GENERATIONS: '0' });
    const worker = await start({ ...env, MAX_GENERATIONS: '3' });
    const alice = await mintToken({ sub: 'alice', tenant: 'acme', scope: READ_WRITE });
    const bob = await mintToken({ sub: 'bob', tenant: 'globex', scope: READ_WRITE });

    // Redis is down when the books are started: their queued state never reaches it.
    await redis.stop();
    const bookIds: string[] = [];
    for (let i = 0; i < 3; i++) {
      const created = await post(front.service.url, '/api/books', alice, { title: `Queued in an outage ${i}`, chapters: 2, sectionsPerChapter: 1 });
      expect(created.status).toBe(201);
      bookIds.push((created.body.data as { bookId: string }).bookId);
    }
    // The instance that queued them goes away: only the worker writes these books from now on.
    await stop(front.service);

    await until(async () => (await Promise.all(bookIds.map(runOf))).every((run) => run?.state === 'running'), 10_000, 'the worker to claim every book');
    const logged = worker.lines.length;
    // The absence of a loop over time: a run handed back while its state cannot be read would be claimed again ~100 times a second.
    await watchForAbsence(2_500);
    for (const bookId of bookIds) expect(await runOf(bookId)).toEqual({ state: 'running', epoch: 1, claims: 1 });
    const retryLines = worker.lines.slice(logged).filter((line) => /retrying|handing its run back/.test(line));
    expect(retryLines.length, retryLines.join('')).toBeLessThanOrEqual(1);

    await redis.start();
    for (const bookId of bookIds) {
      await until(async () => (await runOf(bookId))?.state === 'done', 20_000, `${bookId} to complete`);
      const polled = await get(`${worker.service.url}/api/ai/progress/${bookId}`, alice);
      expect(polled.status).toBe(200);
      expect(polled.body.data).toMatchObject({ status: 'COMPLETE', tenant: 'acme' });
      expect((await get(`${worker.service.url}/api/books/${bookId}`, alice)).body.data).toMatchObject({ status: 'COMPLETE' });
      expect((await get(`${worker.service.url}/api/ai/progress/${bookId}`, bob)).status).toBe(404);
      expect((await get(`${worker.service.url}/api/books/${bookId}`, bob)).status).toBe(404);
      expect(await runOf(bookId)).toEqual({ state: 'done', epoch: 1, claims: 1 });
    }
    expect(worker.lines.join('')).not.toContain('book run crashed');
  }, 60_000);

  it('a cancel while Redis is paused is answered within 3 s (202); the book ends cancelled once Redis answers', async () => {
    const redis = teardown.process(await RedisProcess.start());
    const chapter2 = new Gate('chapter 2');
    const { service } = await start({ REDIS_URL: redis.url }, { gates: { 'chapter 2': chapter2 } });
    const created = await post(service.url, '/api/books', undefined, { title: 'Cancelled during a failover', chapters: 3, sectionsPerChapter: 1 });
    const { bookId } = created.body.data as { bookId: string };
    await chapter2.arrival();

    const admin = new Redis(redis.url);
    try {
      await admin.client('PAUSE', '6000', 'ALL');
      const cancelled = await post(service.url, `/api/books/${bookId}/cancel`);
      expect(cancelled.ms).toBeLessThan(3_000);
      expect(cancelled).toMatchObject({ status: 202, body: { success: true } });
      await admin.client('UNPAUSE');
    } finally {
      await admin.client('UNPAUSE').catch(() => {});
      admin.disconnect();
    }
    await until(async () => (await runOf(bookId))?.state === 'done', 20_000, 'the cancel to land');
    expect(await service.broker.get(bookId)).toMatchObject({ status: 'ERROR', error: 'cancelled' });
  }, 30_000);

  it('a cancel after the book ended, before its run was marked done (Postgres away), keeps COMPLETE (409); stopping that run is not a crash', async () => {
    const proxy = teardown.fault(await FaultProxy.start(database.url));
    const prefix = uniquePrefix();
    const proofreading = new Gate('proofreading');
    const runner = await start({ REDIS_KEY_PREFIX: prefix, DATABASE_URL: proxy.url(database.url) }, { gates: { PROOFREADING: proofreading } });
    const created = await post(runner.service.url, '/api/books', undefined, { title: 'Done before the cancel', chapters: 2, sectionsPerChapter: 1 });
    const { bookId } = created.body.data as { bookId: string };
    await proofreading.arrival();
    await until(async () => (await sql`select 1 from chapters where book_id = ${bookId}`).length === 2, 5_000, 'both chapters saved');

    // COMPLETE lands in Redis; marking the run done waits for Postgres.
    proxy.cut();
    proofreading.open();
    await until(async () => (await runner.service.broker.get(bookId))?.status === 'COMPLETE', 10_000, 'COMPLETE in Redis');
    const complete = (await runner.service.broker.get(bookId)) as BookProgress;
    expect((await runOf(bookId))?.state).toBe('running');

    // Another instance, which reaches Postgres, is asked to cancel it.
    const other = await start({ REDIS_KEY_PREFIX: prefix, MAX_GENERATIONS: '0' });
    const refused = await post(other.service.url, `/api/books/${bookId}/cancel`);
    expect(refused).toMatchObject({ status: 409, body: { success: false, error: { code: 'invalid_state' } } });
    expect(await other.service.broker.get(bookId)).toEqual(complete);
    expect((await runOf(bookId))?.state).toBe('done');

    // The runner stops while its run's end still waits for Postgres: nothing crashed.
    await withTimeout(stop(runner.service), 15_000, 'the runner to stop');
    expect(runner.lines.join('')).not.toContain('book run crashed');
    expect(await other.service.broker.get(bookId)).toEqual(complete);
  }, 40_000);
});
