import { describe, expect, it } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';
import { serverForFile } from '../support/service.js';
import { bookId, expectError, progressUrl, published } from './http.js';

const server = serverForFile();

describe('GET /healthz', () => {
  it('answers 200', async () => {
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true, data: { status: 'ok' } });
  });
});

describe('unknown routes', () => {
  it.each([
    ['GET', '/nope'],
    ['GET', '/api/ai/progress'],
    ['POST', '/api/ai/other/book-1'],
    ['DELETE', '/api/ai/progress/book-1'],
    ['GET', '/api/ai/progress/book-1/stream/extra'],
  ])('%s %s is a 404 JSON error', async (method, path) => {
    const res = await fetch(`${server.url}${path}`, { method });
    await expectError(res, 404, 'not_found');
  });
});

describe('GET /api/ai/progress/:bookId', () => {
  it('is 404 with the error shape for a book without progress', async () => {
    const id = bookId('unknown');
    const body = await expectError(await fetch(progressUrl(server.url, id)), 404, 'not_found');
    expect(body.error.message).toContain(id);
  });

  it('returns the latest state with its version as ETag and where it was read', async () => {
    const id = bookId('poll');
    const state = await published(server.url, id, { status: 'GENERATING', generationStep: 'RESEARCH', message: 'reading sources' });

    const res = await fetch(progressUrl(server.url, id));
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe(`"${state.version}"`);
    expect(res.headers.get('x-progress-source')).toBe('redis');
    expect(res.headers.get('cache-control')).toBe('private, no-cache');
    expect(await res.json()).toEqual({ success: true, data: state });
  });

  it('answers 304 to the current ETag, and 200 with the new state once a newer one is published', async () => {
    const id = bookId('etag');
    const first = await published(server.url, id, { status: 'GENERATING', message: 'first' });
    const etag = `"${first.version}"`;

    const unchanged = await fetch(progressUrl(server.url, id), { headers: { 'If-None-Match': etag } });
    expect(unchanged.status).toBe(304);
    expect(unchanged.headers.get('etag')).toBe(etag);
    expect(await unchanged.text()).toBe('');

    const second = await published(server.url, id, { message: 'second' });
    const changed = await fetch(progressUrl(server.url, id), { headers: { 'If-None-Match': etag } });
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).toBe(`"${second.version}"`);
    const body = (await changed.json()) as { data: BookProgress };
    expect(body.data).toEqual(second);
  });

  it('falls back to the database for a book Redis does not hold', async () => {
    const template = await published(server.url, bookId('template'), { status: 'GENERATING', message: 'from the database' });
    const id = bookId('persisted');
    const persisted: BookProgress = { ...template, bookId: id, version: 41 };
    await server.service.store.saveProgress([persisted]);

    const res = await fetch(progressUrl(server.url, id));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-progress-source')).toBe('database');
    expect(res.headers.get('etag')).toBe('"41"');
    expect(await res.json()).toEqual({ success: true, data: persisted });

    // A publish continues that run instead of restarting the version count clients have seen.
    const next = await published(server.url, id, { message: 'resumed' });
    expect(next.version).toBe(42);
    expect(next.startTime).toBe(persisted.startTime);
  });

  it.each([
    ['129 characters', 'b'.repeat(129)],
    ['dots', 'a..b'],
    ['an encoded NUL', 'a%00b'],
    ['a space', 'a%20b'],
    ['unicode', 'bök'],
    ['an encoded slash', 'a%2Fb'],
    ['a malformed escape', 'a%zzb'],
  ])('is 400 for a bookId with %s', async (_, id) => {
    await expectError(await fetch(progressUrl(server.url, id)), 400, 'invalid_book_id');
  });

  it('is a 404 JSON error for a bookId with a slash, which matches no route', async () => {
    await expectError(await fetch(progressUrl(server.url, 'a/b/c')), 404, 'not_found');
  });
});
