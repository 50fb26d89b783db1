import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';
import { BookStore } from '../../src/store/books.js';
import type { DatabaseHandle } from '../../src/store/database.js';
import { PgProgressStore, UPSERT_CHUNK_ROWS } from '../../src/store/progress.js';
import { RunStore } from '../../src/store/runs.js';
import type { Claimant } from '../../src/store/runs.js';
import { until } from '../support/wait.js';

/** Each statement's deadline: generous, so a loaded machine fails no test that a slow one passes. */
export const STORE_TEST_TIMEOUT_MS = 10_000;

/** An opened database for one suite, and how to remove it afterwards. */
export interface TestStoreDatabase {
  handle: DatabaseHandle;
  close(): Promise<void>;
}

function state(bookId: string, version: number, extra: Partial<BookProgress> = {}): BookProgress {
  return {
    bookId,
    status: 'GENERATING',
    generationStep: 'CHAPTERS',
    currentChapter: 1,
    totalChapters: 10,
    currentSection: 0,
    totalSections: 0,
    overallProgress: 30,
    message: `version ${version}`,
    timestamp: 1_700_000_000_000 + version,
    version,
    ...extra,
  };
}

let counter = 0;
const uniqueBook = (label: string) => `${label}-${process.pid}-${Date.now()}-${counter++}`;

const SPEC = { chapters: 3, sectionsPerChapter: 2 };
const LONG_LEASE_MS = 60_000;
const claimant = (owner: string, leaseMs = LONG_LEASE_MS): Claimant => ({ owner, leaseMs });

/**
 * The contract of the database stores (ProgressStore, BookStore, RunStore): every database
 * backend passes this suite unchanged. `openDatabase` is called once per suite; each test uses
 * books of its own, and the run-queue tests start from a queue with nothing to claim.
 */
export function storeContract(name: string, openDatabase: () => Promise<TestStoreDatabase>): void {
  describe(`Store contract: ${name}`, () => {
    let database: TestStoreDatabase;
    let progress: PgProgressStore;
    let books: BookStore;
    let runs: RunStore;

    beforeAll(async () => {
      database = await openDatabase();
      const { db, deadline } = database.handle;
      progress = new PgProgressStore(db, deadline);
      books = new BookStore(db, deadline);
      runs = new RunStore(db, deadline);
    });
    afterAll(async () => {
      await database?.close();
    });

    describe('progress snapshots', () => {
      it('hold nothing for an unknown book', async () => {
        expect(await progress.getProgress(uniqueBook('unknown'))).toBeNull();
      });

      it('return the state saved, and count the rows written', async () => {
        const id = uniqueBook('saved');
        const saved = state(id, 1, { tenant: 'acme' });
        expect(await progress.saveProgress([saved])).toBe(1);
        expect(await progress.getProgress(id)).toEqual(saved);
        expect(await progress.saveProgress([])).toBe(0);
      });

      it('never let an older state overwrite a newer row', async () => {
        const id = uniqueBook('stale');
        const [v1, v2, v3] = [state(id, 1, { message: 'old' }), state(id, 2, { message: 'newer' }), state(id, 3, { message: 'newest' })];
        expect(await progress.saveProgress([v3])).toBe(1);
        // A late snapshot with an older version, alone or in a batch: nothing is written.
        expect(await progress.saveProgress([v1])).toBe(0);
        expect(await progress.saveProgress([v2, v1])).toBe(0);
        // The same version again is not newer either.
        expect(await progress.saveProgress([{ ...v3, message: 'replayed' }])).toBe(0);
        expect(await progress.getProgress(id)).toEqual(v3);
      });

      it('keep the newest of several states of one book given in one batch, whatever their order', async () => {
        const id = uniqueBook('order');
        expect(await progress.saveProgress([state(id, 2), state(id, 1)])).toBe(1);
        expect((await progress.getProgress(id))?.version).toBe(2);
      });

      it('write more books than one statement holds, in several statements', async () => {
        const ids = Array.from({ length: UPSERT_CHUNK_ROWS + 1 }, () => uniqueBook('many'));
        const before = progress.stats.upsertStatements;
        expect(await progress.saveProgress(ids.map((id) => state(id, 1)))).toBe(ids.length);
        expect(progress.stats.upsertStatements - before).toBe(2);
        expect(await progress.getProgress(ids.at(-1)!)).toEqual(state(ids.at(-1)!, 1));
      });

      it('keep the tenant a book first had, and the title and owner it was created with', async () => {
        const id = uniqueBook('tenant');
        await books.createBook({ id, title: 'Created first', owner: 'ada', tenant: 'acme' });
        await progress.saveProgress([state(id, 1, { tenant: 'other' })]);
        expect(await books.tenantOf(id)).toBe('acme');
        const book = await books.getBook(id);
        expect(book).toMatchObject({ title: 'Created first', owner: 'ada', tenant: 'acme', status: 'GENERATING', version: 1 });

        // A book that first appears through a snapshot takes that state's tenant, for good.
        const published = uniqueBook('published');
        await progress.saveProgress([state(published, 1, { tenant: 'first' })]);
        await progress.saveProgress([state(published, 2, { tenant: 'second' })]);
        expect(await books.tenantOf(published)).toBe('first');
      });
    });

    describe('books', () => {
      it('answer undefined for the tenant of a missing book, null for a book without one', async () => {
        expect(await books.tenantOf(uniqueBook('missing'))).toBeUndefined();
        const id = uniqueBook('no-tenant');
        await books.createBook({ id, title: 'Open' });
        expect(await books.tenantOf(id)).toBeNull();
      });

      it('read a book with its saved chapters in order, and null for a missing one', async () => {
        expect(await books.getBook(uniqueBook('missing'))).toBeNull();
        const run = await runs.create({ id: uniqueBook('chapters'), title: 'With chapters' }, SPEC, claimant('writer'));
        for (const number of [2, 1]) await runs.saveChapter(run.bookId, run.epoch, { number, title: `Chapter ${number}`, content: `text ${number}` });
        const book = await books.getBook(run.bookId);
        expect(book?.title).toBe('With chapters');
        expect(book?.chapters.map(({ number, title, content }) => ({ number, title, content }))).toEqual([
          { number: 1, title: 'Chapter 1', content: 'text 1' },
          { number: 2, title: 'Chapter 2', content: 'text 2' },
        ]);
      });

      it('list one tenant’s books newest first, only those allowed, at most `limit`', async () => {
        const tenant = uniqueBook('tenant');
        const ids = [uniqueBook('first'), uniqueBook('second'), uniqueBook('third')];
        for (const id of ids) await books.createBook({ id, title: id, tenant });
        await books.createBook({ id: uniqueBook('elsewhere'), title: 'Not theirs', tenant: `${tenant}-other` });

        const listed = await books.listBooks(10, { tenant, books: null });
        expect(listed.map((book) => book.id).sort()).toEqual([...ids].sort());
        for (let i = 1; i < listed.length; i++) expect(listed[i - 1]!.createdAt.getTime()).toBeGreaterThanOrEqual(listed[i]!.createdAt.getTime());
        expect(await books.listBooks(2, { tenant, books: null })).toHaveLength(2);
        expect((await books.listBooks(10, { tenant, books: new Set([ids[1]!]) })).map((book) => book.id)).toEqual([ids[1]]);
        expect(await books.listBooks(10, { tenant, books: new Set() })).toEqual([]);
      });
    });

    describe('runs', () => {
      /** Ends every run another test left claimable, so claims here see only this test's runs. */
      async function emptyQueue(): Promise<void> {
        const sweeper = claimant('sweeper');
        for (let run = await runs.claimNext(sweeper, []); run; run = await runs.claimNext(sweeper, [])) await runs.finish(run.bookId, run.epoch);
      }
      beforeEach(emptyQueue);

      const queue = (label: string, tenant: string | null = null) => runs.create({ id: uniqueBook(label), title: label, tenant }, SPEC, null);

      it('are created with their book, queued or already claimed, and carry the book’s tenant', async () => {
        const queued = await queue('queued', 'acme');
        expect(queued).toMatchObject({ title: 'queued', chapters: 3, sectionsPerChapter: 2, epoch: 0, claims: 0, cancelRequested: false, outline: null, tenant: 'acme' });
        expect(await runs.find(queued.bookId)).toMatchObject({ state: 'queued', tenant: 'acme' });
        expect(await runs.bookExists(queued.bookId)).toBe(true);
        expect(await books.tenantOf(queued.bookId)).toBe('acme');
        expect(await runs.countQueued()).toBe(1);

        const claimed = await runs.create({ id: uniqueBook('claimed'), title: 'claimed' }, SPEC, claimant('creator'));
        expect(claimed).toMatchObject({ epoch: 1, claims: 1, tenant: null });
        expect((await runs.find(claimed.bookId))?.state).toBe('running');
        expect(await runs.countQueued()).toBe(1);

        expect(await runs.find(uniqueBook('none'))).toBeNull();
        expect(await runs.bookExists(uniqueBook('none'))).toBe(false);
        await expect(runs.create({ id: queued.bookId, title: 'again' }, SPEC, null)).rejects.toThrow();
      });

      it('are claimed oldest first, each claim a new epoch, never one the claimant runs itself', async () => {
        const first = await queue('first');
        const second = await queue('second');
        const claimedFirst = await runs.claimNext(claimant('a'), []);
        expect(claimedFirst).toMatchObject({ bookId: first.bookId, epoch: 1, claims: 1 });
        expect(await runs.claimNext(claimant('b'), [second.bookId])).toBeNull();
        expect(await runs.claimNext(claimant('b'), [])).toMatchObject({ bookId: second.bookId, epoch: 1 });
        expect(await runs.claimNext(claimant('c'), [])).toBeNull();
        expect(await runs.states([first.bookId, second.bookId, uniqueBook('none')])).toEqual(
          new Map([
            [first.bookId, 'running'],
            [second.bookId, 'running'],
          ]),
        );
        expect(await runs.countQueued()).toBe(0);
      });

      it('are never taken twice by concurrent claimers', async () => {
        const queued = await Promise.all(Array.from({ length: 4 }, (_, i) => queue(`concurrent-${i}`)));
        const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => runs.claimNext(claimant(`claimer-${i}`), [])));
        const taken = claims.filter((run) => run !== null).map((run) => run.bookId);
        expect(taken.sort()).toEqual(queued.map((run) => run.bookId).sort());
      });

      it('are stalled once their lease runs out, then taken over with a new epoch; renewing keeps only the claimant’s own', async () => {
        const run = await runs.create({ id: uniqueBook('lease'), title: 'lease' }, SPEC, claimant('short-lived', 1));
        await until(async () => (await runs.find(run.bookId))?.state === 'stalled', 5_000, 'the lease to run out');
        const successor = await runs.claimNext(claimant('successor'), []);
        expect(successor).toMatchObject({ bookId: run.bookId, epoch: 2, claims: 2 });
        expect((await runs.find(run.bookId))?.state).toBe('running');

        // The first runner's renewal finds nothing of its own any more; the successor's does.
        expect(await runs.renew(claimant('short-lived'), [run.bookId])).toEqual(new Map());
        expect(await runs.renew(claimant('successor'), [run.bookId])).toEqual(new Map([[run.bookId, 2]]));
        expect(await runs.renew(claimant('successor'), [])).toEqual(new Map());
      });

      it('fence every write by the epoch: a superseded runner saves nothing, a saved chapter is never rewritten', async () => {
        const run = await runs.create({ id: uniqueBook('fence'), title: 'fence' }, SPEC, claimant('old', 1));
        const chapter = { number: 1, title: 'One', content: 'first text' };
        expect(await runs.saveChapter(run.bookId, run.epoch, chapter)).toBe('saved');
        expect(await runs.saveChapter(run.bookId, run.epoch, { ...chapter, content: 'rewritten' })).toBe('exists');
        expect(await runs.saveOutline(run.bookId, run.epoch, [{ number: 1, title: 'One' }])).toBe(true);

        await until(async () => (await runs.find(run.bookId))?.state === 'stalled', 5_000, 'the lease to run out');
        const next = (await runs.claimNext(claimant('new'), []))!;
        expect(next.epoch).toBe(run.epoch + 1);
        expect(next.outline).toEqual([{ number: 1, title: 'One' }]);

        expect(await runs.saveChapter(run.bookId, run.epoch, { number: 2, title: 'Two', content: 'stale' })).toBe('superseded');
        expect(await runs.saveOutline(run.bookId, run.epoch, [])).toBe(false);
        expect(await runs.release(run.bookId, run.epoch)).toBe(false);
        expect(await runs.finish(run.bookId, run.epoch)).toBe(false);
        expect(await runs.savedChapters(run.bookId)).toEqual(new Set([1]));
        expect((await books.getBook(run.bookId))?.chapters.map((saved) => saved.content)).toEqual(['first text']);
        expect(await runs.saveChapter(uniqueBook('gone'), 1, chapter)).toBe('gone');

        expect(await runs.saveChapter(run.bookId, next.epoch, { number: 2, title: 'Two', content: 'current' })).toBe('saved');
        expect(await runs.savedChapters(run.bookId)).toEqual(new Set([1, 2]));
      });

      it('released, keep their place in the queue and resume at the next claim', async () => {
        const released = await runs.create({ id: uniqueBook('released'), title: 'released' }, SPEC, claimant('stopping'));
        const later = await queue('later');
        expect(await runs.release(released.bookId, released.epoch)).toBe(true);
        expect((await runs.find(released.bookId))?.state).toBe('queued');
        expect(await runs.saveChapter(released.bookId, released.epoch, { number: 1, title: 'One', content: 'x' })).toBe('superseded');
        expect(await runs.claimNext(claimant('resumer'), [])).toMatchObject({ bookId: released.bookId, epoch: 2, claims: 2 });
        expect(await runs.claimNext(claimant('resumer'), [released.bookId])).toMatchObject({ bookId: later.bookId });
      });

      it('finished, are done until requeued for a retry, which keeps the outline', async () => {
        const run = await runs.create({ id: uniqueBook('finished'), title: 'finished' }, SPEC, claimant('runner'));
        await runs.saveOutline(run.bookId, run.epoch, [{ number: 1, title: 'Kept' }]);
        expect(await runs.requeue(run.bookId, 5)).toBeNull();
        expect(await runs.finish(run.bookId, run.epoch)).toBe(true);
        expect((await runs.find(run.bookId))?.state).toBe('done');
        expect(await runs.finish(run.bookId, run.epoch)).toBe(false);
        expect(await runs.claimNext(claimant('other'), [])).toBeNull();

        const retried = await runs.requeue(run.bookId, 7);
        expect(retried).toMatchObject({ bookId: run.bookId, claims: 0, baseVersion: 7, cancelRequested: false, outline: [{ number: 1, title: 'Kept' }] });
        expect((await runs.find(run.bookId))?.state).toBe('queued');
        expect(await runs.claimNext(claimant('retrier'), [])).toMatchObject({ bookId: run.bookId, epoch: run.epoch + 1, claims: 1 });
      });

      it('are taken over to be cancelled, queued or running, which fences their runner out', async () => {
        const running = await runs.create({ id: uniqueBook('cancel-running'), title: 'running' }, SPEC, claimant('runner'));
        const cancelled = await runs.claimForCancel(running.bookId, claimant('canceller'));
        expect(cancelled).toMatchObject({ bookId: running.bookId, epoch: running.epoch + 1, cancelRequested: true });
        expect(await runs.saveChapter(running.bookId, running.epoch, { number: 1, title: 'One', content: 'x' })).toBe('superseded');
        expect(await runs.renew(claimant('runner'), [running.bookId])).toEqual(new Map());

        const queued = await queue('cancel-queued');
        expect(await runs.claimForCancel(queued.bookId, claimant('canceller'))).toMatchObject({ epoch: 1, cancelRequested: true });
        expect(await runs.countQueued()).toBe(0);

        expect(await runs.finish(running.bookId, cancelled!.epoch)).toBe(true);
        expect(await runs.claimForCancel(running.bookId, claimant('canceller'))).toBeNull();
        expect(await runs.claimForCancel(uniqueBook('none'), claimant('canceller'))).toBeNull();
      });
    });
  });
}
