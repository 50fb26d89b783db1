import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';
import { expectedChapters } from '../orchestrator/generators.js';
import { uniquePrefix } from '../support/backends.js';
import { chapterRows, createBook, expectMonotonic, pollState } from '../support/books.js';
import type { CreatedBook } from '../support/books.js';
import { until } from '../support/wait.js';
import { fleetOfServers } from './fleet.js';

/**
 * Books started through POST /api/books survive their process: SIGKILL with another instance
 * running, SIGTERM and a restart, a restart of the embedded default, and a flaky generator.
 */

const fleet = fleetOfServers();
const { start, follow, expectEachChapterOnce } = fleet;

describe('durable generations', () => {
  it('SIGKILL of the instance running books: a second instance resumes each from its last saved chapter', async () => {
    const env = { REDIS_KEY_PREFIX: uniquePrefix(), RUN_LEASE_MS: '1500', DEMO_STEP_MS: '80' };
    const first = await start(env);
    const second = await start(env);
    const books: CreatedBook[] = [];
    for (let i = 0; i < 3; i++) books.push(await createBook(first.url, `Killed mid-book ${i}`, 5));
    const watches = books.map((book) => follow(() => second.url, book.bookId));
    await until(async () => {
      for (const book of books) if ((await chapterRows(fleet.sql, book.bookId)).length < 1) return false;
      return true;
    }, 20_000, 'every book to have a chapter saved');
    const beforeKill = await Promise.all(books.map((book) => chapterRows(fleet.sql, book.bookId)));

    expect(await first.stop('SIGKILL')).toBeNull();
    for (const [i, watch] of watches.entries()) {
      await watch.next((s) => s.status === 'COMPLETE', 40_000, `book ${i} to complete on the second instance`);
    }
    for (const [i, book] of books.entries()) {
      expectMonotonic(watches[i]!.states);
      await expectEachChapterOnce(book);
      // Chapters saved before the kill are the very rows saved then.
      expect((await chapterRows(fleet.sql, book.bookId)).slice(0, beforeKill[i]!.length)).toEqual(beforeKill[i]);
    }
    expect(await second.metric('booksai_generations_resumed_total')).toBe(3);
    expect(second.output).not.toContain('already saved');
  }, 90_000);

  it('SIGTERM of the only instance: it hands its books back at once and they complete after the restart; an outside book is left alone', async () => {
    // A lease far longer than the test: the restarted instance resumes the books because they were handed back, not because a lease ran out.
    const env = { REDIS_KEY_PREFIX: uniquePrefix(), RUN_LEASE_MS: '600000', DEMO_STEP_MS: '80' };
    let server = await start(env);
    const book = await createBook(server.url, 'Deployed mid-book', 6);
    const outside = `outside-${Date.now()}`;
    const publish = await fetch(`${server.url}/api/ai/progress/${outside}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ status: 'GENERATING', generationStep: 'CHAPTERS', totalChapters: 4, currentChapter: 2, message: 'an outside worker' }),
    });
    const outsideState = ((await publish.json()) as { data: BookProgress }).data;
    const watch = follow(() => server.url, book.bookId);
    await until(async () => (await chapterRows(fleet.sql, book.bookId)).length >= 2, 20_000, 'chapter 2 saved');

    expect(await server.stop('SIGTERM', 10_000)).toBe(0);
    const [run] = await fleet.sql<Array<{ state: string; owner: string | null }>>`select state, owner from runs where book_id = ${book.bookId}`;
    expect(run).toEqual({ state: 'queued', owner: null });
    // The last snapshot at shutdown holds the state that says so.
    const [row] = await fleet.sql<Array<{ status: string; message: string }>>`select status, progress->>'message' as message from books where id = ${book.bookId}`;
    expect(row).toEqual({ status: 'GENERATING', message: 'Queued: waiting for a free generation slot' });

    server = await start(env);
    const done = await watch.next((s) => s.status === 'COMPLETE', 40_000, 'COMPLETE after the restart');
    expectMonotonic(watch.states);
    expect(done).toMatchObject({ currentChapter: 6, overallProgress: 100 });
    await expectEachChapterOnce(book);
    expect(await server.metric('booksai_generations_resumed_total')).toBe(1);

    expect(await pollState(server.url, outside)).toEqual(outsideState);
    expect(await fleet.sql`select 1 from runs where book_id = ${outside}`).toHaveLength(0);
  }, 90_000);

  it('the embedded default (no Redis, no Postgres) resumes an interrupted book when it starts again', async () => {
    const env = { DATA_DIR: mkdtempSync(join(tmpdir(), 'booksai-embedded-')), DEMO_STEP_MS: '80', SNAPSHOT_INTERVAL_MS: '200' };
    let server = await fleet.startAlone(env);
    const book = await createBook(server.url, 'Embedded and killed', 5);
    const chaptersOf = async (url: string) => {
      const res = await fetch(`${url}/api/books/${book.bookId}`).catch(() => null);
      if (!res?.ok) return null;
      return ((await res.json()) as { data: { status: string; chapters: Array<{ number: number; title: string; content: string }> } }).data;
    };
    await until(async () => ((await chaptersOf(server.url))?.chapters.length ?? 0) >= 2, 20_000, 'two chapters saved');
    const before = await pollState(server.url, book.bookId);

    expect(await server.stop('SIGKILL')).toBeNull();
    server = await fleet.startAlone(env);
    await until(async () => (await pollState(server.url, book.bookId))?.status === 'COMPLETE', 40_000, 'COMPLETE after the restart');
    const after = await chaptersOf(server.url);
    expect(after?.chapters.map(({ number, title, content }) => ({ number, title, content }))).toEqual(await expectedChapters(book));
    const done = await pollState(server.url, book.bookId);
    expect(done?.startTime).toBe(before?.startTime);
    expect(await server.metric('booksai_generations_resumed_total')).toBe(1);
  }, 90_000);

  it('DEMO_FAILURE_RATE=0.3: books complete; the retries show in the logs and in /metrics', async () => {
    // Retries above the default keep a run of seven failures in a row (0.3^7 per call) out of this test.
    const server = await start({ REDIS_KEY_PREFIX: uniquePrefix(), DEMO_STEP_MS: '10', DEMO_FAILURE_RATE: '0.3', GENERATOR_RETRIES: '12' });
    const books: CreatedBook[] = [];
    for (let i = 0; i < 3; i++) books.push(await createBook(server.url, `Flaky ${i}`, 4));
    for (const book of books) await until(async () => (await pollState(server.url, book.bookId))?.status === 'COMPLETE', 40_000, `${book.bookId} to complete`);
    for (const book of books) await expectEachChapterOnce(book);
    expect(await server.metric('booksai_generation_retries_total')).toBeGreaterThan(0);
    expect(server.output).toContain('simulated transient failure');
    expect(server.output).toContain('failed; retrying');
    expect(await server.metric('booksai_generations_queued')).toBe(0);
  }, 60_000);
});
