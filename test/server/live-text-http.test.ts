import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { bookId, expectError, progressUrl } from './http.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { RedisCluster } from '../support/redis-cluster.js';
import { startTestService } from '../support/service.js';
import { TEST_SECRET, bearer, mintToken } from '../support/tokens.js';
import { until } from '../support/wait.js';

const READ_WRITE = 'progress:read progress:write books:write';
const MAX_SECTION = 2048;
const json = { 'content-type': 'application/json' };

/** A refusal carrying `details` (expectError checks the bare shape). */
async function refusedWith(res: Response, status: number, code: string): Promise<unknown> {
  const body = (await res.json()) as { success: boolean; error: { code: string; message: string; details?: unknown } };
  expect(res.status, JSON.stringify(body)).toBe(status);
  expect(body.success).toBe(false);
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(0);
  return body.error.details;
}

interface Tokens {
  alice: string;
  bob: string;
  reader: string;
  expired: string;
  forged: string;
}

/** The text endpoints on a real server, Redis (`redisEnv`) and Postgres. */
function liveTextHttp(mode: string, redisEnv: () => Record<string, string>) {
  describe(`live text over HTTP (${mode})`, () => {
    let service: Service;
    let database: TestDatabase;
    let sql: postgres.Sql;
    let t: Tokens;

    beforeAll(async () => {
      database = await createTestDatabase();
      service = await startTestService({ DATABASE_URL: database.url, AUTH_JWT_SECRET: TEST_SECRET, MAX_SECTION_TEXT_BYTES: String(MAX_SECTION), ...redisEnv() });
      sql = postgres(database.url, { max: 1, onnotice: () => {} });
      t = {
        alice: await mintToken({ sub: 'alice', tenant: 'acme', scope: READ_WRITE }),
        bob: await mintToken({ sub: 'bob', tenant: 'globex', scope: READ_WRITE }),
        reader: await mintToken({ sub: 'carol', tenant: 'acme', scope: 'progress:read' }),
        expired: await mintToken({ sub: 'alice', tenant: 'acme', scope: READ_WRITE }, { ttlSeconds: -10 }),
        forged: await mintToken({ sub: 'alice', tenant: 'acme', scope: READ_WRITE }, { secret: 'some-other-secret-of-32-bytes-or-more' }),
      };
    }, 60_000);
    afterAll(async () => {
      await sql?.end();
      await service?.close();
      await database?.drop();
    });

    const append = (token: string | null, id: string, body: unknown) =>
      fetch(`${progressUrl(service.url, id)}/text`, { method: 'POST', headers: token === null ? json : bearer(token, json), body: typeof body === 'string' ? body : JSON.stringify(body) });
    const chapter = (token: string | null, id: string, n: number | string, query = '', headers: Record<string, string> = {}) =>
      fetch(`${service.url}/api/books/${id}/chapters/${n}${query}`, { headers: token === null ? headers : bearer(token, headers) });
    /** A book of alice's tenant, as an outside worker starts it: its first progress. */
    async function aliceBook(label: string): Promise<string> {
      const id = bookId(label);
      const res = await fetch(progressUrl(service.url, id), { method: 'POST', headers: bearer(t.alice, json), body: JSON.stringify({ status: 'GENERATING', totalChapters: 2, totalSections: 2, message: 'Writing Chapter 1 of 2...' }) });
      expect(res.status, await res.clone().text()).toBe(200);
      return id;
    }
    async function appended(id: string, body: object): Promise<number> {
      const res = await append(t.alice, id, body);
      const answer = (await res.json()) as { success: boolean; data: { length: number } };
      expect(res.status, JSON.stringify(answer)).toBe(200);
      expect(answer.success).toBe(true);
      return answer.data.length;
    }

    it('appends at contiguous byte offsets; a retried append is refused with 409 and the length, never doubled', async () => {
      const id = await aliceBook('append');
      expect(await appended(id, { chapter: 1, section: 1, offset: 0, text: 'Once upon ' })).toBe(10);
      expect(await appended(id, { chapter: 1, section: 1, offset: 10, text: 'a tíme' })).toBe(17);
      expect(await refusedWith(await append(t.alice, id, { chapter: 1, section: 1, offset: 10, text: 'a tíme' }), 409, 'offset_mismatch')).toEqual({ length: 17 });
      expect(await refusedWith(await append(t.alice, id, { chapter: 1, section: 1, offset: 99, text: 'x' }), 409, 'offset_mismatch')).toEqual({ length: 17 });
      expect(await service.texts.read(id, 1, 1)).toEqual({ attempt: 1, text: 'Once upon a tíme', length: 17 });
      // A reset starts the section over: attempt 2, from offset 0.
      expect(await appended(id, { chapter: 1, section: 1, offset: 0, text: 'Again.', reset: true })).toBe(6);
      expect(await service.texts.read(id, 1, 1)).toEqual({ attempt: 2, text: 'Again.', length: 6 });
    });

    it('refuses an append past MAX_SECTION_TEXT_BYTES with 413 text_too_large, writing nothing', async () => {
      const id = await aliceBook('large');
      expect(await appended(id, { chapter: 1, section: 1, offset: 0, text: 'a'.repeat(2000) })).toBe(2000);
      expect(await refusedWith(await append(t.alice, id, { chapter: 1, section: 1, offset: 2000, text: 'b'.repeat(100) }), 413, 'text_too_large')).toEqual({ length: 2000 });
      expect((await service.texts.read(id, 1, 1))?.length).toBe(2000);
    });

    it("refuses a stale writer's append (a lower fence than the book's) with 409 fenced", async () => {
      const id = await aliceBook('fenced');
      expect(await appended(id, { chapter: 1, section: 1, offset: 0, text: 'new owner', fence: 5 })).toBe(9);
      await expectError(await append(t.alice, id, { chapter: 1, section: 1, offset: 9, text: ' stale', fence: 4 }), 409, 'fenced');
      await expectError(await append(t.alice, id, { chapter: 1, section: 1, offset: 0, text: 'stale', reset: true, fence: 4 }), 409, 'fenced');
      expect((await service.texts.read(id, 1, 1))?.text).toBe('new owner');
      // The text log's fence is the book's: a stale run's progress is refused too.
      await expect(service.tracker.updateProgress(id, { message: 'stale' }, { fence: 4 })).rejects.toThrow(/superseded|fence/i);
    });

    it('answers 400 to a malformed append', async () => {
      const id = await aliceBook('bad');
      for (const body of [
        '{not json',
        { chapter: 1, section: 1, offset: 0 },
        { chapter: 0, section: 1, offset: 0, text: 'x' },
        { chapter: 1, section: 1, offset: -1, text: 'x' },
        { chapter: 1, section: 1.5, offset: 0, text: 'x' },
        { chapter: 1, section: 1, offset: 0, text: '' },
        { chapter: 1, section: 1, offset: 3, text: 'x', reset: true },
        { chapter: 1, section: 1, offset: 0, text: 'x', extra: true },
        // Past what a book has (MAX_CHAPTERS, MAX_SECTIONS_PER_CHAPTER): each reader would read that far.
        { chapter: 51, section: 1, offset: 0, text: 'x' },
        { chapter: 1, section: 21, offset: 0, text: 'x' },
        { chapter: 1, section: 1_000_000, offset: 0, text: 'x' },
        // Text the saved chapter could not hold (the progress schema refuses them too).
        { chapter: 1, section: 1, offset: 0, text: 'lone \ud800 surrogate' },
        { chapter: 1, section: 1, offset: 0, text: 'nul \u0000' },
      ]) {
        const res = await append(t.alice, id, body);
        expect(res.status, JSON.stringify(body)).toBe(400);
      }
      expect(await service.texts.read(id, 1, 1)).toBeNull();
    });

    it('answers 400 invalid_query to a chapter `from` inside a UTF-8 character', async () => {
      const id = await aliceBook('midchar');
      expect((await append(t.alice, id, { chapter: 1, section: 1, offset: 0, text: 'hé wörld' })).status).toBe(200);
      await expectError(await chapter(t.alice, id, 1, '?from=2'), 400, 'invalid_query');
      const res = await chapter(t.alice, id, 1, '?from=3');
      expect(res.status).toBe(200);
      expect(((await res.json()) as { data: { text: string } }).data.text).toBe(' wörld');
    });

    it('refuses an append to a finished book with 409 book_finished, so its text expires with its state', async () => {
      for (const status of ['COMPLETE', 'ERROR'] as const) {
        const id = await aliceBook(`done-${status}`);
        expect((await append(t.alice, id, { chapter: 1, section: 1, offset: 0, text: 'live' })).status).toBe(200);
        const res = await fetch(progressUrl(service.url, id), { method: 'POST', headers: bearer(t.alice, json), body: JSON.stringify({ status, message: 'done' }) });
        expect(res.status, await res.clone().text()).toBe(200);
        await refusedWith(await append(t.alice, id, { chapter: 1, section: 1, offset: 4, text: ' more' }), 409, 'book_finished');
        await refusedWith(await append(t.alice, id, { chapter: 1, section: 1, offset: 0, text: '', reset: true }), 409, 'book_finished');
        expect((await service.texts.read(id, 1, 1))?.text).toBe('live');
      }
    });

    it("refuses no token, another tenant's, an expired and a forged token, and a read-only one, on both endpoints", async () => {
      const id = await aliceBook('auth');
      await appended(id, { chapter: 1, section: 1, offset: 0, text: 'secret words' });
      const body = { chapter: 1, section: 1, offset: 12, text: ' more' };
      await expectError(await append(null, id, body), 401, 'unauthorized');
      await expectError(await append(t.expired, id, body), 401, 'invalid_token');
      await expectError(await append(t.forged, id, body), 401, 'invalid_token');
      await expectError(await append(t.bob, id, body), 404, 'not_found');
      await expectError(await append(t.reader, id, body), 403, 'insufficient_scope');
      expect((await service.texts.read(id, 1, 1))?.text).toBe('secret words');

      await expectError(await chapter(null, id, 1), 401, 'unauthorized');
      await expectError(await chapter(t.expired, id, 1), 401, 'invalid_token');
      await expectError(await chapter(t.forged, id, 1), 401, 'invalid_token');
      // Another tenant's chapter is a 404, as a missing one.
      const other = await expectError(await chapter(t.bob, id, 1), 404, 'not_found');
      const missing = await expectError(await chapter(t.bob, bookId('nobody'), 1), 404, 'not_found');
      expect(other.error.message.replace(id, 'X')).toBe(missing.error.message.replace(/book \S+$/, 'book X'));
      expect((await chapter(t.reader, id, 1)).status).toBe(200);
    });

    it('answers the chapter being written from the text log: only what is new after `from`, with an ETag and 304', async () => {
      const id = await aliceBook('poll');
      await appended(id, { chapter: 1, section: 1, offset: 0, text: 'First section.' });
      await appended(id, { chapter: 1, section: 2, offset: 0, text: 'Sec' });
      const first = await chapter(t.alice, id, 1);
      expect(first.status).toBe(200);
      const etag = first.headers.get('etag')!;
      const data = ((await first.json()) as { data: Record<string, unknown> }).data;
      expect(data).toMatchObject({ bookId: id, chapter: 1, saved: false, from: 0, text: 'First section.\n\nSec', length: 19 });
      expect(data.sections).toEqual([
        { section: 1, attempt: 1, length: 14 },
        { section: 2, attempt: 1, length: 3 },
      ]);
      expect((await chapter(t.alice, id, 1, '', { 'if-none-match': etag })).status).toBe(304);

      await appended(id, { chapter: 1, section: 2, offset: 3, text: 'ond.' });
      const grown = await chapter(t.alice, id, 1, '?from=19', { 'if-none-match': etag });
      expect(grown.status).toBe(200);
      expect(grown.headers.get('etag')).not.toBe(etag);
      expect(((await grown.json()) as { data: unknown }).data).toMatchObject({ from: 19, text: 'ond.', length: 23 });

      // The section started over: `from` past the length answers from 0 and says so.
      await appended(id, { chapter: 1, section: 2, offset: 0, text: 'S', reset: true });
      const reset = ((await (await chapter(t.alice, id, 1, '?from=23')).json()) as { data: unknown }).data;
      expect(reset).toMatchObject({ from: 0, reset: true, text: 'First section.\n\nS', length: 17 });

      await expectError(await chapter(t.alice, id, 2), 404, 'not_found');
      await expectError(await chapter(t.alice, id, 'x'), 400, 'invalid_query');
      await expectError(await chapter(t.alice, id, 1, '?from=-1'), 400, 'invalid_query');
    });

    it('answers a saved chapter from Postgres, equal to what the generation wrote live', async () => {
      const started = await fetch(`${service.url}/api/books`, { method: 'POST', headers: bearer(t.alice, json), body: JSON.stringify({ title: 'Saved and streamed', chapters: 2, sectionsPerChapter: 2 }) });
      expect(started.status).toBe(201);
      const book = ((await started.json()) as { data: { bookId: string } }).data;
      await until(async () => (await sql`SELECT count(*)::int AS n FROM chapters WHERE book_id = ${book.bookId}`)[0]!.n === 2, 30_000, 'both chapters saved');
      const [row] = await sql<Array<{ content: string }>>`SELECT content FROM chapters WHERE book_id = ${book.bookId} AND number = 1`;
      const res = await chapter(t.alice, book.bookId, 1);
      const etag = res.headers.get('etag')!;
      const data = ((await res.json()) as { data: { saved: boolean; text: string; length: number; title: string } }).data;
      expect(data.saved).toBe(true);
      expect(data.text).toBe(row!.content);
      expect(data.length).toBe(Buffer.byteLength(row!.content));
      // The live text of the chapter, while the grace lasts, is the saved chapter's, section by section.
      const live = [await service.texts.read(book.bookId, 1, 1), await service.texts.read(book.bookId, 1, 2)];
      expect(live.map((s) => s?.text).join('\n\n')).toBe(row!.content);
      const tail = ((await (await chapter(t.alice, book.bookId, 1, '?from=10')).json()) as { data: { text: string } }).data;
      expect(tail.text).toBe(Buffer.from(row!.content).subarray(10).toString());
      expect((await chapter(t.alice, book.bookId, 1, '', { 'if-none-match': etag })).status).toBe(304);
      await expectError(await chapter(t.bob, book.bookId, 1), 404, 'not_found');
    }, 60_000);
  });
}

liveTextHttp('redis', () => ({}));

let cluster: RedisCluster | undefined;
describe('on a Redis Cluster', () => {
  beforeAll(async () => {
    cluster = await RedisCluster.start();
  }, 90_000);
  afterAll(async () => {
    await cluster?.stop();
  });
  liveTextHttp('redis cluster', () => ({ REDIS_URL: '', REDIS_CLUSTER_NODES: cluster!.seeds }));
});
