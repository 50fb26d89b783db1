import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { serverForFile } from '../support/service.js';
import { bookId, expectError, progressUrl, publish, published } from './http.js';
import type { ErrorBody } from './http.js';

const MAX_BODY_BYTES = 64 * 1024;

const server = serverForFile();

describe('POST /api/ai/progress/:bookId', () => {
  it('publishes a partial update and returns the new state with version 1', async () => {
    const id = bookId('first');
    const res = await publish(server.url, id, { status: 'GENERATING', generationStep: 'OUTLINE', message: 'outlining' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { success: boolean; data: Record<string, unknown> };
    expect(body.success).toBe(true);
    expect(body.data).toMatchObject({ bookId: id, status: 'GENERATING', generationStep: 'OUTLINE', message: 'outlining', version: 1 });

    const polled = await fetch(progressUrl(server.url, id));
    expect(await polled.json()).toEqual(body);
  });

  it('merges partial updates, keeping fields not sent, and counts versions up by one', async () => {
    const id = bookId('merge');
    const a = await published(server.url, id, { status: 'GENERATING', generationStep: 'CHAPTERS', totalChapters: 10, currentChapter: 1 });
    const b = await published(server.url, id, { message: 'writing chapter 3', currentChapter: 3 });
    const c = await published(server.url, id, { totalSections: 4, currentSection: 2 });

    expect([a.version, b.version, c.version]).toEqual([1, 2, 3]);
    expect(c).toMatchObject({
      status: 'GENERATING',
      generationStep: 'CHAPTERS',
      totalChapters: 10,
      currentChapter: 3,
      totalSections: 4,
      currentSection: 2,
      message: 'writing chapter 3',
    });
    expect(c.startTime).toBe(a.startTime);
  });

  it('gives concurrent publishers distinct consecutive versions', async () => {
    const id = bookId('concurrent');
    const states = await Promise.all(
      Array.from({ length: 20 }, (_, i) => published(server.url, id, { status: 'GENERATING', message: `writer ${i}` })),
    );
    expect(states.map((s) => s.version).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  describe('refuses bad input with a 4xx JSON error', () => {
    it.each([
      ['invalid JSON', '{"status": "GENERATING"'],
      ['an empty body', ''],
      ['text', 'status=GENERATING'],
    ])('%s → 400 invalid_json', async (_, raw) => {
      await expectError(await publish(server.url, bookId('json'), raw), 400, 'invalid_json');
    });

    it.each([
      ['overallProgress above 100', { overallProgress: 150 }],
      ['overallProgress below 0', { overallProgress: -1 }],
      ['an unknown status', { status: 'DONE' }],
      ['an unknown generation step', { generationStep: 'WRITING' }],
      ['an unknown field', { overalProgress: 50 }],
      ['a bookId in the body', { bookId: 'other' }],
      ['a version in the body', { version: 99 }],
      ['currentChapter above totalChapters', { totalChapters: 3, currentChapter: 4 }],
      ['currentSection above totalSections', { totalSections: 2, currentSection: 5 }],
      ['a negative counter', { currentChapter: -1 }],
      ['a fractional counter', { totalChapters: 2.5 }],
      ['a counter as a string', { totalChapters: '3' }],
      ['progress as a string', { overallProgress: '50' }],
      ['a message as a number', { message: 42 }],
      ['a status as null', { status: null }],
      ['a message over 2000 characters', { message: 'x'.repeat(2_001) }],
      ['a message with NUL (Postgres jsonb refuses it)', { message: 'a\u0000b' }],
      ['a message with an unpaired surrogate', { message: 'half \ud83d' }],
      ['an error with NUL', { status: 'ERROR', error: '\u0000' }],
      ['a negative startTime', { startTime: -5 }],
      ['null', null],
      ['a string', 'GENERATING'],
      ['an array', [{ message: 'x' }]],
    ])('%s → 400 invalid_progress', async (_, body) => {
      const res = await publish(server.url, bookId('invalid'), JSON.stringify(body));
      await expectError(res, 400, 'invalid_progress');
    });

    it('refuses JSON nested 30,000 levels deep, at the top or in a field, with a 400', async () => {
      const deep = `${'['.repeat(30_000)}${']'.repeat(30_000)}`;
      const top = await publish(server.url, bookId('deep'), deep);
      expect(top.status).toBe(400);
      expect(['invalid_json', 'invalid_progress']).toContain(((await top.json()) as ErrorBody).error.code);
      await expectError(await publish(server.url, bookId('deep'), `{"message":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`), 400, 'invalid_progress');
    });

    it('refuses an update that would push a stored chapter count past the total', async () => {
      const id = bookId('merged-invalid');
      const before = await published(server.url, id, { status: 'GENERATING', totalChapters: 5, currentChapter: 2 });
      await expectError(await publish(server.url, id, { currentChapter: 6 }), 400, 'invalid_progress');
      const after = await fetch(progressUrl(server.url, id));
      expect(((await after.json()) as { data: unknown }).data).toEqual(before);
    });

    it.each([
      ['129 characters', 'b'.repeat(129)],
      ['dots', 'a..b'],
      ['an encoded NUL', 'a%00b'],
      ['a space', 'a%20b'],
      ['unicode', 'bök'],
      ['an encoded slash', 'a%2Fb'],
    ])('a bookId with %s → 400 invalid_book_id', async (_, id) => {
      await expectError(await publish(server.url, id, { message: 'x' }), 400, 'invalid_book_id');
    });

    it('a bookId of 128 characters is accepted', async () => {
      const id = `${'b'.repeat(120)}${Math.random().toString(36).slice(2, 10).padEnd(8, '0')}`;
      expect(id).toHaveLength(128);
      expect((await published(server.url, id, { message: 'long id' })).bookId).toBe(id);
    });

    it('a bookId with a slash matches no route → 404 JSON', async () => {
      await expectError(await publish(server.url, 'a/b', { message: 'x' }), 404, 'not_found');
    });

    it(`a body of ${MAX_BODY_BYTES} + 1 bytes → 413 payload_too_large`, async () => {
      const body = JSON.stringify({ message: 'x' }).padEnd(MAX_BODY_BYTES + 1, ' ');
      expect(Buffer.byteLength(body)).toBe(MAX_BODY_BYTES + 1);
      await expectError(await publish(server.url, bookId('large'), body), 413, 'payload_too_large');
    });

    it('a chunked body over the limit, without Content-Length → 413 payload_too_large', async () => {
      const url = new URL(progressUrl(server.url, bookId('chunked')));
      const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        });
        req.on('error', reject);
        for (let i = 0; i < 9; i++) req.write(' '.repeat(8 * 1024));
        req.end('{}');
      });
      expect(status).toBe(413);
      expect(JSON.parse(text)).toEqual({ success: false, error: { code: 'payload_too_large', message: expect.any(String) } });
    });

    it(`a body of exactly ${MAX_BODY_BYTES} bytes is accepted`, async () => {
      const body = JSON.stringify({ message: 'at the limit' }).padEnd(MAX_BODY_BYTES, ' ');
      const res = await publish(server.url, bookId('limit'), body);
      expect(res.status).toBe(200);
    });
  });
});
