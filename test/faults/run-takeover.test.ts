import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expectedChapters } from '../orchestrator/generators.js';
import { REDIS_URL, createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { chapterRows, createBook, expectMonotonic, pollState } from '../support/books.js';
import type { CreatedBook } from '../support/books.js';
import { Watch } from '../support/events.js';
import { ServerProcess } from '../support/server-process.js';
import { until } from '../support/wait.js';

/** Exactly one runner per book: a frozen runner that wakes up writes nothing; kills and restarts at random lose nothing. */

let database: TestDatabase;
let sql: postgres.Sql;
const servers: ServerProcess[] = [];
const watches: Watch[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 1, onnotice: () => {} });
});
afterEach(async () => {
  for (const watch of watches.splice(0)) watch.close();
  for (const server of servers.splice(0)) {
    server.signal('SIGCONT');
    if (server.running) await server.stop('SIGKILL');
  }
});
afterAll(async () => {
  await sql?.end();
  await database?.drop();
});

async function start(env: Record<string, string>): Promise<ServerProcess> {
  const server = await ServerProcess.start({ REDIS_URL, DATABASE_URL: database.url, SNAPSHOT_INTERVAL_MS: '500', ...env });
  servers.push(server);
  return server;
}

/** A watcher of `bookId` on whichever server `target()` names, closed after each test. */
function follow(target: () => string, bookId: string): Watch {
  const watch = Watch.following(target, bookId);
  watches.push(watch);
  return watch;
}

async function expectEachChapterOnce(book: CreatedBook): Promise<void> {
  const rows = await chapterRows(sql, book.bookId);
  expect(rows.map(({ number, title, content }) => ({ number, title, content }))).toEqual(await expectedChapters(book));
  for (const row of rows) expect(row.updated_at, `chapter ${row.number} of ${book.bookId} rewritten`).toEqual(row.created_at);
}

async function epochOf(bookId: string): Promise<number> {
  const [row] = await sql<Array<{ epoch: number }>>`select epoch from runs where book_id = ${bookId}`;
  return row?.epoch ?? 0;
}

describe('run takeover', () => {
  it('SIGSTOP past the lease: another instance takes over; after SIGCONT the frozen one writes nothing for the book', async () => {
    const env = { REDIS_KEY_PREFIX: uniquePrefix(), RUN_LEASE_MS: '1500', DEMO_STEP_MS: '100' };
    const frozen = await start(env);
    const successor = await start(env);
    const book = await createBook(frozen.url, 'Frozen runner', 8);
    const watch = follow(() => successor.url, book.bookId);
    await until(async () => (await chapterRows(sql, book.bookId)).length >= 1, 20_000, 'chapter 1 saved');

    frozen.signal('SIGSTOP');
    await until(async () => (await epochOf(book.bookId)) === 2, 10_000, 'the successor to claim the run');
    const takenOverAt = (await chapterRows(sql, book.bookId)).length;
    // The successor is ahead of where the frozen runner stopped: a write of the frozen one would move the book back.
    await until(async () => (await chapterRows(sql, book.bookId)).length >= takenOverAt + 1, 10_000, 'the successor to save a chapter');
    const ahead = await pollState(successor.url, book.bookId);

    frozen.signal('SIGCONT');
    await until(() => /lost the lease of a run|run superseded/.test(frozen.output), 10_000, 'the woken runner to stop its run');
    const done = await watch.next((s) => s.status === 'COMPLETE', 30_000, 'COMPLETE on the successor');

    expect(ahead?.status).toBe('GENERATING');
    expectMonotonic(watch.states);
    await expectEachChapterOnce(book);
    expect(await epochOf(book.bookId)).toBe(2);
    expect(await successor.metric('booksai_generations_resumed_total')).toBe(1);
    // Nothing after COMPLETE from either process, and the woken one still serves.
    expect(await pollState(successor.url, book.bookId)).toEqual(done);
    expect(await pollState(frozen.url, book.bookId)).toEqual(done);
    expect(frozen.output + successor.output).not.toContain('already saved');
  }, 90_000);

  it('20 books over 3 instances with random kills and restarts: all complete, every chapter saved once', async () => {
    const env = { REDIS_KEY_PREFIX: uniquePrefix(), RUN_LEASE_MS: '1500', DEMO_STEP_MS: '120' };
    const live: ServerProcess[] = [];
    for (let i = 0; i < 3; i++) live.push(await start(env));
    const anyLive = () => live[Math.floor(Math.random() * live.length)]!.url;

    const books: CreatedBook[] = [];
    for (let i = 0; i < 20; i++) books.push(await createBook(live[i % live.length]!.url, `Chaos ${i}`, 4));
    const followers = books.map((book) => follow(anyLive, book.bookId));

    const savedChapters = async () => Number((await sql<Array<{ n: string }>>`select count(*) as n from chapters`)[0]?.n ?? 0);
    const outputs: string[] = [];
    for (let round = 0; round < 6; round++) {
      // Each kill lands after 1-4 more chapters were saved somewhere: mid-book, at a random point.
      const target = (await savedChapters()) + 1 + Math.floor(Math.random() * 4);
      await until(async () => (await savedChapters()) >= Math.min(target, 80), 30_000, `${target} chapters saved before kill ${round + 1}`);
      const victim = live.splice(Math.floor(Math.random() * live.length), 1)[0]!;
      await victim.stop(Math.random() < 0.5 ? 'SIGKILL' : 'SIGTERM');
      outputs.push(victim.output);
      live.push(await start(env));
    }

    await until(
      async () => (await Promise.all(books.map((book) => pollState(anyLive(), book.bookId)))).every((s) => s?.status === 'COMPLETE'),
      90_000,
      'every book to complete',
    );
    for (const [i, book] of books.entries()) {
      await followers[i]!.next((s) => s.status === 'COMPLETE', 10_000, `COMPLETE on the watcher of ${book.bookId}`);
      expectMonotonic(followers[i]!.states);
      await expectEachChapterOnce(book);
    }
    const runs = await sql<Array<{ state: string }>>`select state from runs where book_id in ${sql(books.map((b) => b.bookId))}`;
    expect(runs.map((r) => r.state)).toEqual(books.map(() => 'done'));
    // The kills interrupted runs: some books were claimed more than once.
    expect(Math.max(...(await Promise.all(books.map((book) => epochOf(book.bookId)))))).toBeGreaterThan(1);
    expect(outputs.join('') + live.map((s) => s.output).join('')).not.toContain('already saved');
  }, 120_000);
});
