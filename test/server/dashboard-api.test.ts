import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TimelineRecorder } from '../../src/analytics/recorder.js';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { openDatabase } from '../../src/store/database.js';
import type { DatabaseHandle } from '../../src/store/database.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { startTestService } from '../support/service.js';
import { TEST_SECRET, bearer, mintToken } from '../support/tokens.js';
import { until, waitOut } from '../support/wait.js';
import { bookId, expectError, progressUrl } from './http.js';

// The API the dashboard reads: who is signed in, a book's timeline, titles set by publishers, stalled books.
let database: TestDatabase;
let handle: DatabaseHandle;
let service: Service;
const tokens = {} as Record<"alice" | "reader" | "bob" | "expired" | "forged", string>;

const get = (path: string, token?: string) => fetch(`${service.url}${path}`, { headers: token ? bearer(token) : {} });
const post = (id: string, body: unknown, token?: string) =>
  fetch(progressUrl(service.url, id), { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? bearer(token) : {}) }, body: JSON.stringify(body) });
const bookRow = async (id: string, token: string) => {
  const res = await get(`/api/books/${id}`, token);
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: { title: string; progress: BookProgress | null } }).data;
};

beforeAll(async () => {
  database = await createTestDatabase();
  service = await startTestService({ DATABASE_URL: database.url, AUTH_JWT_SECRET: TEST_SECRET, STALE_AFTER_SECONDS: '1' });
  handle = await openDatabase(database.url, '', 5_000);
  tokens.alice = await mintToken({ sub: 'alice', tenant: 'acme', scope: 'progress:read progress:write books:write' });
  tokens.reader = await mintToken({ sub: 'carol', tenant: 'acme' });
  tokens.bob = await mintToken({ sub: 'bob', tenant: 'globex', scope: 'progress:read progress:write' });
  tokens.expired = await mintToken({ sub: 'alice', tenant: 'acme', scope: 'progress:read progress:write' }, { ttlSeconds: -60 });
  tokens.forged = await mintToken({ sub: 'alice', tenant: 'acme', scope: 'progress:read progress:write admin' }, { secret: 'not-the-server-secret-but-32-byte' });
});
afterAll(async () => {
  await service?.close();
  await handle?.close();
  await database?.drop();
});

describe('GET /api/session', () => {
  it('names the signed-in caller, its tenant and scopes', async () => {
    const res = await get('/api/session', tokens.alice);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toContain('private');
    const { data } = (await res.json()) as { data: Record<string, unknown> };
    expect(data).toMatchObject({ auth: true, sub: 'alice', tenant: 'acme', anyTenant: false, scopes: ['progress:read', 'progress:write', 'books:write'], staleAfterSeconds: 1 });
    expect(data.expiresAt).toEqual(expect.any(Number));
    const reader = (await (await get('/api/session', tokens.reader)).json()) as { data: { scopes: string[] } };
    expect(reader.data.scopes).toEqual(['progress:read']);
  });

  it('is a 401 without a token, with an expired one and with a forged one', async () => {
    await expectError(await get('/api/session'), 401, 'unauthorized');
    await expectError(await get('/api/session', tokens.expired), 401, 'invalid_token');
    await expectError(await get('/api/session', tokens.forged), 401, 'invalid_token');
  });
});

describe('a title on publish', () => {
  it("names the publisher's book in its tenant, and is not part of the state", async () => {
    const id = bookId('titled');
    const res = await post(id, { status: 'GENERATING', generationStep: 'RESEARCH', title: '  Outside worker book  ' }, tokens.alice);
    const body = (await res.json()) as { data: Record<string, unknown> };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.data).not.toHaveProperty('title');
    expect((await bookRow(id, tokens.alice)).title).toBe('Outside worker book');
    // A later update renames it; one without a title keeps it.
    expect((await post(id, { title: 'Renamed' }, tokens.alice)).status).toBe(200);
    expect((await post(id, { overallProgress: 20 }, tokens.alice)).status).toBe(200);
    expect((await bookRow(id, tokens.alice)).title).toBe('Renamed');
  });

  it("is refused as a missing book for another tenant's book, and changes nothing", async () => {
    const id = bookId('foreign');
    expect((await post(id, { status: 'GENERATING', title: 'Mine' }, tokens.alice)).status).toBe(200);
    await expectError(await post(id, { title: 'Hijacked' }, tokens.bob), 404, 'not_found');
    await expectError(await post(id, { title: 'Hijacked' }), 401, 'unauthorized');
    await expectError(await post(id, { title: 'Hijacked' }, tokens.expired), 401, 'invalid_token');
    await expectError(await post(id, { title: 'Hijacked' }, tokens.forged), 401, 'invalid_token');
    expect((await bookRow(id, tokens.alice)).title).toBe('Mine');
  });

  it('must be text of 1 to 200 characters; other unknown fields stay refused', async () => {
    const id = bookId('bad-title');
    await expectError(await post(id, { title: '' }, tokens.alice), 400, 'invalid_progress');
    await expectError(await post(id, { title: 42 }, tokens.alice), 400, 'invalid_progress');
    await expectError(await post(id, { title: 'x'.repeat(201) }, tokens.alice), 400, 'invalid_progress');
    await expectError(await post(id, { title: 'ok', overalProgress: 3 }, tokens.alice), 400, 'invalid_progress');
    await expectError(await get(`/api/books/${id}`, tokens.alice), 404, 'not_found');
  });
});

describe('GET /api/books/:id/timeline', () => {
  it('answers the recorded steps to the tenant, and 404 to anyone else', async () => {
    const id = bookId('timeline');
    const states: BookProgress[] = [];
    for (const update of [
      { status: 'GENERATING', generationStep: 'RESEARCH' },
      { generationStep: 'OUTLINE' },
      { generationStep: 'STRUCTURE' },
    ] as const) {
      const res = await post(id, update, tokens.alice);
      states.push(((await res.json()) as { data: BookProgress }).data);
    }
    await new TimelineRecorder(handle.db).record(states);
    const res = await get(`/api/books/${id}/timeline`, tokens.alice);
    const body = (await res.json()) as { data: { bookId: string; steps: Array<{ step: string; durationMs: number | null; endedAt: number | null }> } };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.data).not.toHaveProperty('tenant');
    expect(body.data.steps.map((s) => s.step)).toEqual(['RESEARCH', 'OUTLINE', 'STRUCTURE']);
    expect(body.data.steps[0]?.durationMs).toBe(states[1]!.timestamp - states[0]!.timestamp);
    expect(body.data.steps[2]?.endedAt).toBeNull();

    await expectError(await get(`/api/books/${id}/timeline`, tokens.bob), 404, 'not_found');
    await expectError(await get(`/api/books/${id}/timeline`), 401, 'unauthorized');
    await expectError(await get(`/api/books/${id}/timeline`, tokens.expired), 401, 'invalid_token');
    await expectError(await get(`/api/books/${id}/timeline`, tokens.forged), 401, 'invalid_token');
    await expectError(await get(`/api/books/${bookId('unknown')}/timeline`, tokens.alice), 404, 'not_found');
  });
});

describe('stalledSince', () => {
  it('marks a running book silent for STALE_AFTER_SECONDS in the books API, and clears on the next update', async () => {
    const id = bookId('stalled');
    const first = ((await (await post(id, { status: 'GENERATING', generationStep: 'CHAPTERS', title: 'Quiet one' }, tokens.alice)).json()) as { data: BookProgress }).data;
    expect(first).not.toHaveProperty('stalledSince');
    await until(async () => (await bookRow(id, tokens.alice)).progress?.stalledSince !== undefined, 5_000, 'the book is stalled');
    expect((await bookRow(id, tokens.alice)).progress?.stalledSince).toBe(first.timestamp);
    const list = (await (await get('/api/books', tokens.alice)).json()) as { data: Array<{ bookId: string; progress: BookProgress | null }> };
    expect(list.data.find((b) => b.bookId === id)?.progress?.stalledSince).toBe(first.timestamp);
    // The stored state and the poll answer stay as published.
    const poll = (await (await get(`/api/ai/progress/${id}`, tokens.alice)).json()) as { data: BookProgress };
    expect(poll.data).not.toHaveProperty('stalledSince');
    expect((await post(id, { overallProgress: 50 }, tokens.alice)).status).toBe(200);
    expect((await bookRow(id, tokens.alice)).progress).not.toHaveProperty('stalledSince');
  });

  it('never marks a finished book', async () => {
    const id = bookId('done');
    expect((await post(id, { status: 'COMPLETE', generationStep: 'COMPLETE' }, tokens.alice)).status).toBe(200);
    await waitOut(1_100);
    expect((await bookRow(id, tokens.alice)).progress).not.toHaveProperty('stalledSince');
  });
});
