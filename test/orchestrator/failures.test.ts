import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';
import { startService } from '../../src/service.js';
import type { Service } from '../../src/service.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { Watch } from '../support/events.js';
import { RedisProcess } from '../support/redis-process.js';
import { silentLog, testConfig } from '../support/service.js';
import { teardownAfterEach } from '../support/teardown.js';
import { until, withTimeout } from '../support/wait.js';
import { Gate, ScriptedGenerator } from './generators.js';
import type { Scripted } from './generators.js';

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

async function start(script: Scripted, env: Record<string, string> = {}): Promise<{ service: Service; generator: ScriptedGenerator }> {
  for (const gate of Object.values(script.gates ?? {})) teardown.gate(gate);
  const generator = new ScriptedGenerator(STEP_MS, script);
  // Snapshots far apart: what reaches Postgres here is what the pipeline and the terminal path write themselves.
  const config = testConfig({ DATABASE_URL: database.url, SNAPSHOT_INTERVAL_MS: '3600000', ...env });
  const service = teardown.service(await startService(config, silentLog, { generator }));
  return { service, generator };
}

async function createBook(service: Service, title: string, chapters: number, sectionsPerChapter = 2): Promise<string> {
  const res = await fetch(`${service.url}/api/books`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ title, chapters, sectionsPerChapter }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { data: { bookId: string } }).data.bookId;
}

function watch(service: Service, bookId: string): Watch {
  return teardown.watch(new Watch(`${service.url}/api/ai/progress/${bookId}/stream`));
}

async function chaptersInPostgres(bookId: string): Promise<Array<{ number: number; content: string }>> {
  return sql<Array<{ number: number; content: string }>>`select number, content from chapters where book_id = ${bookId} order by number`;
}

async function rowOf(bookId: string): Promise<{ status: string; version: number; progress: BookProgress | null } | undefined> {
  const [row] = await sql<Array<{ status: string; version: number; progress: BookProgress | null }>>`select status, version, progress from books where id = ${bookId}`;
  return row;
}

function expectNeverBackwards(states: readonly BookProgress[]): void {
  for (let i = 1; i < states.length; i++) {
    const [before, after] = [states[i - 1]!, states[i]!];
    expect(after.version, `version after ${before.version}`).toBeGreaterThan(before.version);
    expect(after.overallProgress, `progress at version ${after.version}`).toBeGreaterThanOrEqual(before.overallProgress);
  }
}

describe('a generator that fails', () => {
  it('ends the book ERROR with its message, and keeps the chapters written before', async () => {
    const started = new Gate('the planning step');
    const { service } = await start({ gates: { PLANNING: started }, failIn: { chapter: 2, message: 'model quota exceeded' } });
    const bookId = await createBook(service, 'Doomed', 3);
    const stream = watch(service, bookId);
    await started.arrival();
    await stream.next(() => true, 5_000, 'the first state');
    const run = service.orchestrator.settled(bookId);
    started.open();
    expect(await withTimeout(run!, 10_000, 'the run to end')).toBe('ERROR');

    const failed = await stream.next((s) => s.status === 'ERROR', 10_000, 'ERROR');
    expect(failed).toMatchObject({ bookId, status: 'ERROR', error: 'model quota exceeded' });
    expect(failed.message).toContain('model quota exceeded');
    expectNeverBackwards(stream.states);
    expect(stream.states.filter((s) => s.status === 'ERROR')).toEqual([failed]);

    // Written at once, and chapter 1 kept.
    expect(await rowOf(bookId)).toMatchObject({ status: 'ERROR', version: failed.version, progress: failed });
    const chapters = await chaptersInPostgres(bookId);
    expect(chapters.map((c) => c.number)).toEqual([1]);
    expect(chapters[0]?.content.length).toBeGreaterThan(0);

    const res = await fetch(`${service.url}/api/books/${bookId}`);
    const book = ((await res.json()) as { data: { status: string; chapters: Array<{ number: number }> } }).data;
    expect(book.status).toBe('ERROR');
    expect(book.chapters.map((c) => c.number)).toEqual([1]);
  });
});

describe('a Redis outage during a generation', () => {
  it('delays progress but neither fails the book nor moves it backwards; the book completes', async () => {
    const redis = teardown.process(await RedisProcess.start());
    const chapter2 = new Gate('chapter 2');
    const chapter4 = new Gate('chapter 4');
    const proofreading = new Gate('proofreading');
    const gates = { 'chapter 2': chapter2, 'chapter 4': chapter4, PROOFREADING: proofreading };
    const { service, generator } = await start({ gates }, { REDIS_URL: redis.url });
    const bookId = await createBook(service, 'Through the outage', 4);
    const stream = watch(service, bookId);

    await chapter2.arrival();
    const before = await stream.next((s) => s.generationStep === 'CHAPTERS' && s.currentChapter === 2, 5_000, 'chapter 2 on the stream');
    const run = service.orchestrator.settled(bookId);
    expect(run).toBeDefined();

    await redis.stop();
    const written = generator.sectionsWritten;
    chapter2.open();
    // Chapters 2 and 3 are written while Redis is down: generation does not wait for progress.
    await chapter4.arrival();
    expect(generator.sectionsWritten).toBe(written + 4);
    await until(async () => (await chaptersInPostgres(bookId)).length === 3, 5_000, 'chapters 1-3 in Postgres');

    await redis.start();
    chapter4.open();
    // Progress published after Redis came back (empty) continues from where the book was, not from scratch.
    await proofreading.arrival();
    const resumed = await stream.next((s) => s.generationStep === 'PROOFREADING', 10_000, 'PROOFREADING on the stream after the outage');
    expect(resumed).toMatchObject({ status: 'GENERATING', totalChapters: 4, currentChapter: 4, totalSections: 2, startTime: before.startTime });
    expect(resumed.version).toBeGreaterThan(before.version);
    expect(resumed.overallProgress).toBeGreaterThanOrEqual(90);
    proofreading.open();
    expect(await withTimeout(run!, 20_000, 'the run to end')).toBe('COMPLETE');

    const done = await stream.next((s) => s.status === 'COMPLETE', 10_000, 'COMPLETE on the stream');
    expect(done).toMatchObject({ overallProgress: 100, currentChapter: 4, totalChapters: 4 });
    expect(stream.states.some((s) => s.status === 'ERROR')).toBe(false);
    expectNeverBackwards(stream.states);

    expect(await rowOf(bookId)).toMatchObject({ status: 'COMPLETE', version: done.version });
    expect((await chaptersInPostgres(bookId)).map((c) => c.number)).toEqual([1, 2, 3, 4]);
  });
});

describe('a chapter save refused by Postgres (not an outage)', () => {
  it('ends the book ERROR with a reason, without an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const chapter2 = new Gate('chapter 2');
      const { service } = await start({ gates: { 'chapter 2': chapter2 } });
      const bookId = await createBook(service, 'Deleted while writing', 3);
      await chapter2.arrival();
      const run = service.orchestrator.settled(bookId);
      // The book row disappears: every later chapter save violates the foreign key, and retrying cannot help.
      await until(async () => (await chaptersInPostgres(bookId)).length === 1, 5_000, 'chapter 1 in Postgres');
      await sql`delete from books where id = ${bookId}`;
      chapter2.open();
      expect(await withTimeout(run!, 10_000, 'the run to end')).toBe('ERROR');
      expect(unhandled).toEqual([]);
      expect(await service.broker.get(bookId)).toMatchObject({ status: 'ERROR', error: 'the database refused to save a chapter' });
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
