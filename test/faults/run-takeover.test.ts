import { describe, expect, it } from 'vitest';
import { uniquePrefix } from '../support/backends.js';
import { chapterRows, createBook, expectMonotonic, pollState } from '../support/books.js';
import type { CreatedBook } from '../support/books.js';
import type { ServerProcess } from '../support/server-process.js';
import { until } from '../support/wait.js';
import { fleetOfServers } from './fleet.js';

/** Exactly one runner per book: a frozen runner that wakes up writes nothing; kills and restarts at random lose nothing. */

const fleet = fleetOfServers();
const { start, follow, expectEachChapterOnce } = fleet;

async function epochOf(bookId: string): Promise<number> {
  const [row] = await fleet.sql<Array<{ epoch: number }>>`select epoch from runs where book_id = ${bookId}`;
  return row?.epoch ?? 0;
}

describe('run takeover', () => {
  it('SIGSTOP past the lease: another instance takes over; after SIGCONT the frozen one writes nothing for the book', async () => {
    const env = { REDIS_KEY_PREFIX: uniquePrefix(), RUN_LEASE_MS: '1500', DEMO_STEP_MS: '100' };
    const frozen = await start(env);
    const successor = await start(env);
    const book = await createBook(frozen.url, 'Frozen runner', 8);
    const watch = follow(() => successor.url, book.bookId);
    await until(async () => (await chapterRows(fleet.sql, book.bookId)).length >= 1, 20_000, 'chapter 1 saved');

    frozen.signal('SIGSTOP');
    await until(async () => (await epochOf(book.bookId)) === 2, 10_000, 'the successor to claim the run');
    const takenOverAt = (await chapterRows(fleet.sql, book.bookId)).length;
    // The successor is ahead of where the frozen runner stopped: a write of the frozen one would move the book back.
    await until(async () => (await chapterRows(fleet.sql, book.bookId)).length >= takenOverAt + 1, 10_000, 'the successor to save a chapter');
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

    const savedChapters = async () => Number((await fleet.sql<Array<{ n: string }>>`select count(*) as n from chapters`)[0]?.n ?? 0);
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
    const runs = await fleet.sql<Array<{ state: string }>>`select state from runs where book_id in ${fleet.sql(books.map((b) => b.bookId))}`;
    expect(runs.map((r) => r.state)).toEqual(books.map(() => 'done'));
    // The kills interrupted runs: some books were claimed more than once.
    expect(Math.max(...(await Promise.all(books.map((book) => epochOf(book.bookId)))))).toBeGreaterThan(1);
    expect(outputs.join('') + live.map((s) => s.output).join('')).not.toContain('already saved');
  }, 120_000);
});
