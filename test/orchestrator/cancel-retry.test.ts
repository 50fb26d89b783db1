import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';
import { startService } from '../../src/service.js';
import type { Service } from '../../src/service.js';
import { createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { Watch } from '../support/events.js';
import { silentLog, testConfig } from '../support/service.js';
import { teardownAfterEach } from '../support/teardown.js';
import { until, withTimeout } from '../support/wait.js';
import { Gate, ScriptedGenerator, expectedChapters } from './generators.js';

const STEP_MS = 5;

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

async function start(env: Record<string, string>, gate?: Gate): Promise<Service> {
  if (gate) teardown.gate(gate);
  const generator = new ScriptedGenerator(STEP_MS, gate ? { gates: { [gate.what]: gate } } : {});
  return teardown.service(await startService(testConfig({ DATABASE_URL: database.url, SNAPSHOT_INTERVAL_MS: '3600000', ...env }), silentLog, { generator }));
}

async function post(service: Service, path: string, body?: unknown): Promise<{ status: number; body: { success: boolean; data?: unknown; error?: { code: string; message: string } } }> {
  const res = await fetch(`${service.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as never };
}

async function createBook(service: Service, title: string, chapters: number): Promise<{ bookId: string; title: string; chapters: number; sectionsPerChapter: number }> {
  const res = await post(service, '/api/books', { title, chapters, sectionsPerChapter: 2 });
  expect(res.status).toBe(201);
  return res.body.data as never;
}

async function poll(service: Service, bookId: string): Promise<BookProgress> {
  const res = await fetch(`${service.url}/api/ai/progress/${bookId}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: BookProgress }).data;
}

async function listed(service: Service): Promise<Map<string, { run: string | null; status: string; progress: BookProgress | null }>> {
  const res = await fetch(`${service.url}/api/books`);
  const rows = ((await res.json()) as { data: Array<{ bookId: string; run: string | null; status: string; progress: BookProgress | null }> }).data;
  return new Map(rows.map((row) => [row.bookId, row]));
}

async function chapterRows(bookId: string) {
  return sql<Array<{ number: number; title: string; content: string; created_at: Date; updated_at: Date }>>`
    select number, title, content, created_at, updated_at from chapters where book_id = ${bookId} order by number`;
}

function watch(service: Service, bookId: string): Watch {
  return teardown.watch(new Watch(`${service.url}/api/ai/progress/${bookId}/stream`));
}

describe('the generation queue, cancel and retry', () => {
  it('queues books past MAX_GENERATIONS, cancels queued and running books, retries from the last saved chapter', async () => {
    const chapter2 = new Gate('chapter 2');
    const service = await start({ MAX_GENERATIONS: '1' }, chapter2);

    const first = await createBook(service, 'Cancelled while writing', 3);
    await chapter2.arrival();
    await until(async () => (await chapterRows(first.bookId)).length === 1, 5_000, 'chapter 1 saved');

    // The only slot is taken: the next book waits, and says so.
    const second = await createBook(service, 'Cancelled while queued', 2);
    expect(await poll(service, second.bookId)).toMatchObject({ status: 'PLANNING', message: 'Queued: waiting for a free generation slot' });
    const books = await listed(service);
    expect(books.get(first.bookId)).toMatchObject({ run: 'running', status: 'GENERATING' });
    expect(books.get(second.bookId)).toMatchObject({ run: 'queued', status: 'PLANNING', progress: { message: 'Queued: waiting for a free generation slot' } });
    await until(async () => (await metric(service, 'booksai_generations_queued')) === 1, 5_000, 'one queued book in /metrics');

    const cancelledQueued = await post(service, `/api/books/${second.bookId}/cancel`);
    expect(cancelledQueued).toMatchObject({ status: 200, body: { success: true, data: { status: 'ERROR', error: 'cancelled' } } });
    expect((await listed(service)).get(second.bookId)).toMatchObject({ run: 'done', status: 'ERROR' });
    expect(await post(service, `/api/books/${second.bookId}/cancel`)).toMatchObject({ status: 409, body: { success: false, error: { code: 'invalid_state' } } });

    // Running: retry refused; cancel stops it where it is, chapter 1 stays.
    expect(await post(service, `/api/books/${first.bookId}/retry`)).toMatchObject({ status: 409, body: { error: { code: 'invalid_state' } } });
    const before = await poll(service, first.bookId);
    const cancelled = await post(service, `/api/books/${first.bookId}/cancel`);
    expect(cancelled).toMatchObject({ status: 200, body: { data: { status: 'ERROR', error: 'cancelled' } } });
    const cancelledState = cancelled.body.data as BookProgress;
    expect(cancelledState.version).toBeGreaterThan(before.version);
    expect(service.orchestrator.running).toBe(0);
    // The stopped run's generator call goes on when let go; nothing it produces is written.
    chapter2.open();
    const [saved] = await chapterRows(first.bookId);
    expect(await chapterRows(first.bookId)).toHaveLength(1);
    expect(await poll(service, first.bookId)).toEqual(cancelledState);

    // Retry: a new run from chapter 2; chapter 1 is neither generated nor written again.
    const stream = watch(service, first.bookId);
    await stream.version(cancelledState.version);
    const retried = await post(service, `/api/books/${first.bookId}/retry`);
    expect(retried).toMatchObject({ status: 202, body: { success: true, data: { status: 'GENERATING' } } });
    const done = await stream.next((s) => s.status === 'COMPLETE', 10_000, 'COMPLETE after the retry');
    const afterRetry = stream.states.filter((s) => s.version > cancelledState.version);
    expect(afterRetry.some((s) => s.status === 'PLANNING' || s.currentChapter < 1)).toBe(false);
    expect(afterRetry.map((s) => s.version)).toEqual([...afterRetry.map((s) => s.version)].sort((a, b) => a - b));
    expect(done.startTime).toBeGreaterThan(cancelledState.startTime ?? 0);
    const rows = await chapterRows(first.bookId);
    expect(rows.map(({ number, title, content }) => ({ number, title, content }))).toEqual(await expectedChapters(first));
    expect(rows[0]).toEqual(saved);
    for (const row of rows) expect(row.updated_at).toEqual(row.created_at);

    expect(await post(service, `/api/books/${first.bookId}/retry`)).toMatchObject({ status: 409, body: { error: { code: 'invalid_state' } } });
    expect(await post(service, `/api/books/${first.bookId}/cancel`)).toMatchObject({ status: 409, body: { error: { code: 'invalid_state' } } });
    // The queued book, cancelled before it started, can be retried too.
    expect(await post(service, `/api/books/${second.bookId}/retry`)).toMatchObject({ status: 202 });
    await until(async () => (await poll(service, second.bookId)).status === 'COMPLETE', 10_000, 'the second book to complete after its retry');
  });

  it('a book cancelled before its outline, then retried, never shows PLANNING again', async () => {
    const first = new Gate('PLANNING');
    const again = new Gate('PLANNING again');
    teardown.gate(first);
    teardown.gate(again);
    // Read at every call: after the cancel, a planning step would stop at the second gate.
    const script = { gates: { PLANNING: first } };
    const service = teardown.service(await startService(testConfig({ DATABASE_URL: database.url, SNAPSHOT_INTERVAL_MS: '3600000' }), silentLog, { generator: new ScriptedGenerator(STEP_MS, script) }));
    const book = await createBook(service, 'Cancelled while planning', 2);
    await first.arrival();
    const cancelled = await post(service, `/api/books/${book.bookId}/cancel`);
    expect(cancelled).toMatchObject({ status: 200, body: { data: { status: 'ERROR', error: 'cancelled' } } });
    script.gates.PLANNING = again;
    first.open();

    expect(await post(service, `/api/books/${book.bookId}/retry`)).toMatchObject({ status: 202, body: { data: { status: 'GENERATING', generationStep: 'OUTLINE' } } });
    // Either the retried run completes, or it plans again and waits at the second gate, showing PLANNING.
    const completed = until(async () => (await poll(service, book.bookId)).status === 'COMPLETE', 10_000, 'COMPLETE after the retry');
    const outcome = await Promise.race([completed.then(() => 'completed'), again.reached.then(async () => (await poll(service, book.bookId)).status)]);
    expect(outcome).toBe('completed');
    expect((await chapterRows(book.bookId)).map((row) => row.number)).toEqual([1, 2]);
  });

  it('answers 404 for unknown books, 409 for books of outside workers, 400 for bad ids', async () => {
    const service = await start({});
    for (const action of ['cancel', 'retry']) {
      expect(await post(service, `/api/books/bk_unknown/${action}`)).toMatchObject({ status: 404, body: { success: false, error: { code: 'not_found' } } });
      expect(await post(service, `/api/books/a..b/${action}`)).toMatchObject({ status: 400, body: { success: false } });
    }
    const outside = `outside-${Date.now()}`;
    await service.tracker.updateProgress(outside, { status: 'GENERATING', message: 'written by a worker elsewhere' });
    await until(async () => (await sql`select 1 from books where id = ${outside}`).length === 1, 5_000, 'the outside book in Postgres');
    for (const action of ['cancel', 'retry']) {
      const refused = await post(service, `/api/books/${outside}/${action}`);
      expect(refused).toMatchObject({ status: 409, body: { error: { code: 'invalid_state' } } });
      expect(refused.body.error?.message).toContain('not generated by this service');
    }
    expect((await listed(service)).get(outside)).toMatchObject({ run: null, status: 'GENERATING' });
  });

  it('never takes over or resumes an outside worker’s book after a restart', async () => {
    const prefix = uniquePrefix();
    const first = await start({ REDIS_KEY_PREFIX: prefix });
    const outside = `outside-${Date.now()}`;
    const published = await first.tracker.updateProgress(outside, { status: 'GENERATING', generationStep: 'CHAPTERS', totalChapters: 3, currentChapter: 1, message: 'a worker elsewhere' });
    await teardown.close(first);

    const second = await start({ REDIS_KEY_PREFIX: prefix, RUN_LEASE_MS: '500' });
    // A book of its own runs to the end meanwhile: the queue was looked at many times.
    const own = await createBook(second, 'Our own book', 2);
    await withTimeout(second.orchestrator.settled(own.bookId)!, 10_000, 'our own book');
    await until(async () => (await metric(second, 'booksai_generations_queued')) === 0, 5_000, 'an empty queue');
    expect(await poll(second, outside)).toEqual(published);
    expect(await sql`select 1 from runs where book_id = ${outside}`).toHaveLength(0);
  });
});

async function metric(service: Service, name: string): Promise<number> {
  const text = await (await fetch(`${service.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no metric ${name}`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}
