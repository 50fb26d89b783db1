import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TextChunk, TextLog } from '../../src/broker/text-log.js';
import { until } from '../support/wait.js';

/** A text log under test, and how to raise a book's fence (a commit of a newer run). */
export interface TextLogUnderTest {
  readonly text: TextLog;
  raiseFence(bookId: string, fence: number): Promise<void>;
  /** The section's text expires (its TTL ran out), the rest of the book's text staying. */
  expireSection(bookId: string, chapter: number, section: number): Promise<void>;
  close(): Promise<void>;
}

let counter = 0;
const uniqueBook = () => `text-${process.pid}-${Date.now()}-${counter++}`;

/** The TextLog contract: every implementation passes this suite unchanged. */
export function textLogContract(name: string, make: (options: { maxSectionBytes: number }) => Promise<TextLogUnderTest>): void {
  describe(`TextLog contract: ${name}`, () => {
    let subject: TextLogUnderTest;
    let log: TextLog;
    beforeEach(async () => {
      subject = await make({ maxSectionBytes: 1024 });
      log = subject.text;
    });
    afterEach(async () => {
      await subject.close();
    });

    it('holds nothing for a section never written', async () => {
      const id = uniqueBook();
      expect(await log.read(id, 1, 1)).toBeNull();
      expect(await log.current(id)).toBeNull();
    });

    it('appends at contiguous byte offsets and refuses any other offset with the length', async () => {
      const id = uniqueBook();
      expect(await log.beginSection(id, 1, 1)).toBe(1);
      expect(await log.append(id, { chapter: 1, section: 1, offset: 0 }, 'Once ')).toEqual({ ok: true, length: 5 });
      // "é" is two bytes: offsets count UTF-8 bytes.
      expect(await log.append(id, { chapter: 1, section: 1, offset: 5 }, 'upon é')).toEqual({ ok: true, length: 12 });
      expect(await log.append(id, { chapter: 1, section: 1, offset: 5 }, 'upon é')).toEqual({ ok: false, reason: 'offset_mismatch', length: 12 });
      expect(await log.append(id, { chapter: 1, section: 1, offset: 13 }, 'x')).toEqual({ ok: false, reason: 'offset_mismatch', length: 12 });
      expect(await log.read(id, 1, 1)).toEqual({ attempt: 1, text: 'Once upon é', length: 12 });
      expect(await log.read(id, 1, 1, 5)).toEqual({ attempt: 1, text: 'upon é', length: 12 });
      expect(await log.read(id, 1, 1, 12)).toEqual({ attempt: 1, text: '', length: 12 });
      expect(await log.current(id)).toEqual({ chapter: 1, section: 1, attempt: 1 });
    });

    it('refuses an append past the size limit, writing nothing', async () => {
      const id = uniqueBook();
      await log.beginSection(id, 1, 1);
      await log.append(id, { chapter: 1, section: 1, offset: 0 }, 'a'.repeat(1000));
      expect(await log.append(id, { chapter: 1, section: 1, offset: 1000 }, 'b'.repeat(25))).toEqual({ ok: false, reason: 'too_large', length: 1000 });
      expect((await log.read(id, 1, 1))?.length).toBe(1000);
    });

    it('keeps each section apart, and follows the section being written', async () => {
      const id = uniqueBook();
      await log.beginSection(id, 2, 1);
      await log.append(id, { chapter: 2, section: 1, offset: 0 }, 'first');
      await log.beginSection(id, 2, 2);
      await log.append(id, { chapter: 2, section: 2, offset: 0 }, 'second');
      expect((await log.read(id, 2, 1))?.text).toBe('first');
      expect((await log.read(id, 2, 2))?.text).toBe('second');
      expect(await log.current(id)).toEqual({ chapter: 2, section: 2, attempt: 1 });
    });

    it('starts a section over with a new attempt, announced as a reset', async () => {
      const id = uniqueBook();
      const seen: TextChunk[] = [];
      const unsubscribe = await log.subscribeText(id, (chunk) => seen.push(chunk));
      await log.beginSection(id, 1, 1);
      await log.append(id, { chapter: 1, section: 1, offset: 0 }, 'half a sent');
      expect(await log.beginSection(id, 1, 1)).toBe(2);
      expect(await log.read(id, 1, 1)).toEqual({ attempt: 2, text: '', length: 0 });
      await log.append(id, { chapter: 1, section: 1, offset: 0 }, 'Whole.');
      await until(() => seen.length === 3, 5_000, 'three chunks arrived');
      unsubscribe();
      expect(seen).toEqual([
        { bookId: id, chapter: 1, section: 1, attempt: 1, offset: 0, text: 'half a sent' },
        { bookId: id, chapter: 1, section: 1, attempt: 2, offset: 0, text: '', reset: true },
        { bookId: id, chapter: 1, section: 1, attempt: 2, offset: 0, text: 'Whole.' },
      ]);
    });

    it('delivers every chunk of a book in append order, to book and every-book listeners', async () => {
      const [a, b] = [uniqueBook(), uniqueBook()];
      const ofA: string[] = [];
      const all: string[] = [];
      const offA = await log.subscribeText(a, (chunk) => ofA.push(chunk.text));
      const offAll = await log.subscribeAllText((chunk) => {
        if (chunk.bookId === a || chunk.bookId === b) all.push(`${chunk.bookId === a ? 'a' : 'b'}${chunk.text}`);
      });
      await log.beginSection(a, 1, 1);
      await log.beginSection(b, 1, 1);
      let offset = 0;
      for (let i = 0; i < 20; i++) {
        const r = await log.append(a, { chapter: 1, section: 1, offset }, `${i} `);
        if (r.ok) offset = r.length;
      }
      await log.append(b, { chapter: 1, section: 1, offset: 0 }, 'x');
      await until(() => ofA.length === 20 && all.length === 21, 5_000, 'every chunk arrived');
      offA();
      offAll();
      expect(ofA.join('')).toBe(Array.from({ length: 20 }, (_, i) => `${i} `).join(''));
      expect(all.filter((t) => t.startsWith('a')).map((t) => t.slice(1))).toEqual(ofA);
    });

    it('resolves every subscription of a book only once it receives: listeners subscribing together all get the next chunk', async () => {
      const id = uniqueBook();
      const got: number[] = [];
      const offs = await Promise.all([0, 1, 2].map((n) => log.subscribeText(id, () => got.push(n))));
      await log.beginSection(id, 1, 1);
      await log.append(id, { chapter: 1, section: 1, offset: 0 }, 'first words');
      await until(() => got.length === 3, 5_000, 'the chunk at every listener');
      for (const off of offs) off();
      expect(got.sort()).toEqual([0, 1, 2]);
    });

    it("refuses a superseded writer's appends and resets", async () => {
      const id = uniqueBook();
      await subject.raiseFence(id, 2);
      expect(await log.beginSection(id, 1, 1, 1)).toBeNull();
      expect(await log.append(id, { chapter: 1, section: 1, offset: 0 }, 'stale', 1)).toEqual({ ok: false, reason: 'fenced' });
      expect(await log.read(id, 1, 1)).toBeNull();
      expect(await log.beginSection(id, 1, 1, 2)).toBe(1);
      expect(await log.append(id, { chapter: 1, section: 1, offset: 0 }, 'fresh', 2)).toEqual({ ok: true, length: 5 });
      expect(await log.append(id, { chapter: 1, section: 1, offset: 5 }, ' too', 3)).toEqual({ ok: true, length: 9 });
    });

    it('keeps a saved chapter readable for the grace', async () => {
      const id = uniqueBook();
      await log.beginSection(id, 1, 1);
      await log.append(id, { chapter: 1, section: 1, offset: 0 }, 'kept a while');
      await log.chapterSaved(id, 1, 3);
      expect((await log.read(id, 1, 1))?.text).toBe('kept a while');
    });

    it("never gives a section's attempt number again once its text expired: a fresh start after it is the next attempt", async () => {
      const id = uniqueBook();
      await log.append(id, { chapter: 1, section: 1, offset: 0 }, 'the first text');
      await subject.expireSection(id, 1, 1);
      expect(await log.read(id, 1, 1)).toBeNull();
      // An append starts it afresh: attempt 2, so a reader at 1:1:1:14 is not handed this as a continuation.
      const chunks: TextChunk[] = [];
      const unsubscribe = await log.subscribeText(id, (chunk) => chunks.push(chunk));
      expect(await log.append(id, { chapter: 1, section: 1, offset: 0 }, 'another text')).toEqual({ ok: true, length: 12 });
      expect(await log.read(id, 1, 1)).toEqual({ attempt: 2, text: 'another text', length: 12 });
      await until(() => chunks.length === 1, 5_000, 'the chunk');
      expect(chunks[0]).toMatchObject({ attempt: 2, offset: 0, text: 'another text' });
      // And a begin after another expiry is attempt 3, never 1.
      await subject.expireSection(id, 1, 1);
      expect(await log.beginSection(id, 1, 1)).toBe(3);
      expect(await log.current(id)).toEqual({ chapter: 1, section: 1, attempt: 3 });
      unsubscribe();
    });
  });
}
