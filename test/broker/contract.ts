import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Broker, DirtyClaims } from '../../src/broker/broker.js';
import type { BookProgress } from '../../src/progress/schema.js';
import { ProgressTracker } from '../../src/progress/tracker.js';
import { until, waitOut, withTimeout } from '../support/wait.js';

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
const uniqueBook = () => `book-${process.pid}-${Date.now()}-${counter++}`;

/** The Broker contract (with its DirtyClaims): every implementation passes this suite unchanged. */
export function brokerContract(name: string, makeBroker: () => Promise<Broker & DirtyClaims>): void {
  describe(`Broker contract: ${name}`, () => {
    let broker: Broker & DirtyClaims;
    beforeEach(async () => {
      broker = await makeBroker();
    });
    afterEach(async () => {
      await broker.close();
    });

    it('holds nothing for an unknown book', async () => {
      expect(await broker.get(uniqueBook())).toBeNull();
    });

    it('commits a first state only when nothing is held, and returns it from get', async () => {
      const id = uniqueBook();
      expect(await broker.commit(state(id, 1), null)).toEqual({ committed: true });
      expect(await broker.get(id)).toEqual(state(id, 1));
      const conflict = await broker.commit(state(id, 1, { message: 'other' }), null);
      expect(conflict).toEqual({ committed: false, current: state(id, 1) });
    });

    it('reads several books at once, in order, with null for the unknown', async () => {
      const [a, b] = [uniqueBook(), uniqueBook()];
      await broker.commit(state(a, 1), null);
      await broker.commit(state(b, 1, { message: 'b' }), null);
      expect(await broker.getMany([b, uniqueBook(), a])).toEqual([state(b, 1, { message: 'b' }), null, state(a, 1)]);
      expect(await broker.getMany([])).toEqual([]);
    });

    it('commits over the held version only, and reports the held state on conflict', async () => {
      const id = uniqueBook();
      await broker.commit(state(id, 1), null);
      expect(await broker.commit(state(id, 2), 1)).toEqual({ committed: true });
      expect(await broker.commit(state(id, 3), 1)).toEqual({ committed: false, current: state(id, 2) });
      expect((await broker.get(id))?.version).toBe(2);
    });

    it('refuses a commit whose fence is lower than one committed for the book, and delivers nothing for it', async () => {
      const id = uniqueBook();
      const delivered: number[] = [];
      const unsubscribe = await broker.subscribe(id, (s) => delivered.push(s.version));
      expect(await broker.commit(state(id, 1), null, 1)).toEqual({ committed: true });
      expect(await broker.commit(state(id, 2), 1, 2)).toEqual({ committed: true });
      // The writer of fence 1 was superseded: refused whatever version it expects.
      expect(await broker.commit(state(id, 3, { message: 'stale' }), 2, 1)).toEqual({ committed: false, fenced: true });
      expect(await broker.commit(state(id, 3), 2, 2)).toEqual({ committed: true });
      // Commits without a fence (outside publishers) are never refused; a conflict is still a conflict.
      expect(await broker.commit(state(id, 4), 3)).toEqual({ committed: true });
      expect(await broker.commit(state(id, 5), 3, 3)).toEqual({ committed: false, current: state(id, 4) });
      expect(await broker.commit(state(id, 5), 4, 3)).toEqual({ committed: true });
      await until(() => delivered.length >= 5, 2_000, 'five deliveries');
      expect(delivered).toEqual([1, 2, 3, 4, 5]);
      expect((await broker.get(id))?.message).toBe('version 5');
      // Fences of other books are their own.
      expect(await broker.commit(state(uniqueBook(), 1), null, 0)).toEqual({ committed: true });
      unsubscribe();
    });

    it('delivers every commit to every subscriber in order, and nothing after unsubscribing', async () => {
      const id = uniqueBook();
      const a: number[] = [];
      const b: number[] = [];
      let resolveA: () => void;
      const aDone = new Promise<void>((resolve) => (resolveA = resolve));
      const stopA = await broker.subscribe(id, (s) => {
        a.push(s.version);
        if (s.version === 10) resolveA();
      });
      let resolveB: () => void;
      const bDone = new Promise<void>((resolve) => (resolveB = resolve));
      const statesB: unknown[] = [];
      const jsonsB: unknown[] = [];
      const stopB = await broker.subscribe(id, (s, json) => {
        b.push(s.version);
        statesB.push(s);
        jsonsB.push(JSON.parse(json));
        if (s.version === 20) resolveB();
      });
      for (let v = 1; v <= 10; v++) await broker.commit(state(id, v), v === 1 ? null : v - 1);
      await withTimeout(aDone, 5_000, 'subscriber a to receive version 10');
      stopA();
      for (let v = 11; v <= 20; v++) await broker.commit(state(id, v), v - 1);
      await withTimeout(bDone, 5_000, 'subscriber b to receive version 20');
      stopB();
      expect(b).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(jsonsB, 'each state as JSON').toEqual(statesB);
      expect(a).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    });

    it('does not deliver one book to subscribers of another', async () => {
      const watched = uniqueBook();
      const other = uniqueBook();
      const seen: string[] = [];
      let resolve: () => void;
      const got = new Promise<void>((r) => (resolve = r));
      const stop = await broker.subscribe(watched, (s) => {
        seen.push(s.bookId);
        resolve();
      });
      await broker.commit(state(other, 1), null);
      await broker.commit(state(watched, 1), null);
      await withTimeout(got, 5_000, 'the watched book');
      stop();
      expect(seen).toEqual([watched]);
    });

    it('delivers every book to an all-books subscriber until it unsubscribes', async () => {
      const [a, b] = [uniqueBook(), uniqueBook()];
      const seen: string[] = [];
      let resolve: () => void;
      const got = new Promise<void>((r) => (resolve = r));
      const stop = await broker.subscribeAll((s) => {
        if (s.bookId !== a && s.bookId !== b) return; // other tests share the Redis
        seen.push(`${s.bookId}@${s.version}`);
        if (seen.length === 3) resolve();
      }, () => {});
      await broker.commit(state(a, 1), null);
      await broker.commit(state(b, 1), null);
      await broker.commit(state(a, 2), 1);
      await withTimeout(got, 5_000, 'three commits on the all-books subscription');
      stop();
      // In commit order per book (the contract); across books a cluster may interleave shards.
      expect(seen.filter((e) => e.startsWith(`${a}@`))).toEqual([`${a}@1`, `${a}@2`]);
      expect(seen.filter((e) => e.startsWith(`${b}@`))).toEqual([`${b}@1`]);
    });

    it('claims dirty books once, for one owner at a time, and gives them back on failure', async () => {
      const ids = [uniqueBook(), uniqueBook(), uniqueBook()];
      for (const id of ids) await broker.commit(state(id, 1), null);
      await broker.commit(state(ids[0]!, 2), 1);

      const first = await broker.claimDirty('owner-a', 10_000, null);
      expect(new Set(first)).toEqual(new Set(ids));
      expect(await broker.claimDirty('owner-b', 10_000, null)).toBeNull();

      await broker.settleClaim('owner-a', false);
      const again = await broker.claimDirty('owner-b', 10_000, null);
      expect(new Set(again)).toEqual(new Set(ids));
      await broker.settleClaim('owner-b', true);
      expect(await broker.claimDirty('owner-a', 10_000, null)).toEqual([]);
      await broker.settleClaim('owner-a', true);
    });

    it('grants each round to one claim only', async () => {
      const id = uniqueBook();
      await broker.commit(state(id, 1), null);
      expect(await broker.claimDirty('owner-a', 10_000, 7)).toEqual([id]);
      await broker.settleClaim('owner-a', true);
      await broker.commit(state(id, 2), 1);
      expect(await broker.claimDirty('owner-b', 10_000, 7)).toBeNull();
      expect(await broker.claimDirty('owner-b', 10_000, 6)).toBeNull();
      expect(await broker.claimDirty('owner-b', 10_000, 8)).toEqual([id]);
      await broker.settleClaim('owner-b', true);
    });

    it('returns the books of an expired claim to the next owner', async () => {
      const id = uniqueBook();
      await broker.commit(state(id, 1), null);
      expect(await broker.claimDirty('dead-owner', 1, null)).toEqual([id]);
      await waitOut(20); // the 1 ms lease runs out
      expect(await broker.claimDirty('next-owner', 10_000, null)).toEqual([id]);
      await broker.settleClaim('dead-owner', true); // a late settle of a lost claim changes nothing
      await broker.settleClaim('next-owner', false);
      expect(await broker.claimDirty('next-owner', 10_000, null)).toEqual([id]);
      await broker.settleClaim('next-owner', true);
    });

    it('gives concurrent tracker publishers distinct versions and loses no update', async () => {
      const id = uniqueBook();
      const trackers = [1, 2, 3, 4].map(() => new ProgressTracker({ states: broker }));
      const seen: number[] = [];
      const stop = await broker.subscribe(id, (s) => seen.push(s.version));
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) => trackers[i % 4]!.updateProgress(id, { message: `update ${i}` })),
      );
      stop();
      const versions = results.map((s) => s.version).sort((x, y) => x - y);
      expect(versions).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
      expect((await broker.get(id))?.version).toBe(60);
    });
  });
}
