import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { TimelineRecorder } from '../../src/analytics/recorder.js';
import type { Service } from '../../src/service.js';
import { openDatabase } from '../../src/store/database.js';
import { REDIS_URL, createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { ApiContract } from '../support/openapi.js';
import { startTestService } from '../support/service.js';
import { TEST_SECRET, bearer, mintToken } from '../support/tokens.js';
import { tryWebSocket } from '../support/upgrade.js';
import { until, waitOut } from '../support/wait.js';
import { RawStream, bookId } from './http.js';

/**
 * Real answers of every endpoint, each status the test can provoke, checked against the
 * document the server serves (ApiContract: status listed, headers present, body valid).
 */

const PUBLISH_TOKEN = 'publish-token-of-the-openapi-test';
const RATE = 10;

let redisProxy: FaultProxy;
let databaseProxy: FaultProxy;
let database: TestDatabase;
let service: Service;
let contract: ApiContract;
const tokens: Record<'writer' | 'reader' | 'other' | 'admin' | 'expired' | 'forged' | 'flooder', string> = {} as never;

beforeAll(async () => {
  database = await createTestDatabase();
  redisProxy = await FaultProxy.start(REDIS_URL);
  databaseProxy = await FaultProxy.start(database.url);
  service = await startTestService({
    REDIS_URL: redisProxy.url(REDIS_URL),
    DATABASE_URL: databaseProxy.url(database.url),
    AUTH_JWT_SECRET: TEST_SECRET,
    PUBLISH_TOKEN,
    MAX_PUBLISHES_PER_SECOND_PER_TENANT: String(RATE),
    DEMO_STEP_MS: '5',
    BACKEND_TIMEOUT_MS: '500',
  });
  const all = 'progress:read progress:write books:write';
  tokens.writer = await mintToken({ sub: 'wanda', tenant: 'acme', scope: all });
  tokens.reader = await mintToken({ sub: 'rita', tenant: 'acme', scope: 'progress:read' });
  tokens.other = await mintToken({ sub: 'olga', tenant: 'globex', scope: all });
  tokens.admin = await mintToken({ sub: 'ada', scope: 'admin' });
  tokens.expired = await mintToken({ sub: 'wanda', tenant: 'acme', scope: all }, { ttlSeconds: -60 });
  tokens.forged = await mintToken({ sub: 'wanda', tenant: 'acme', scope: all }, { secret: 'another-secret-of-exactly-32-byt' });
  tokens.flooder = await mintToken({ sub: 'fred', tenant: 'flood', scope: all });
  contract = new ApiContract(await (await fetch(`${service.url}/api/openapi.json`)).json());
});

afterAll(async () => {
  await service?.close();
  await redisProxy?.close();
  await databaseProxy?.close();
  await database?.drop();
});

type Who = keyof typeof tokens | 'none' | 'publisher';
function call(path: string, who: Who, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Response> {
  const headers: Record<string, string> = { ...init.headers };
  if (who === 'publisher') Object.assign(headers, bearer(PUBLISH_TOKEN), { 'X-Tenant': 'acme' });
  else if (who !== 'none') Object.assign(headers, bearer(tokens[who]));
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const body = init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
  return fetch(`${service.url}${path}`, { method: init.method ?? (body === undefined ? 'GET' : 'POST'), headers, body });
}

async function check(res: Promise<Response>, status: number, method: string, path: string): Promise<any> {
  const answer = await res;
  expect(answer.status, `${method} ${path}`).toBe(status);
  return contract.expectDocumented(answer, method, path);
}

/** The first `event:` frame of an SSE stream, as the document's SseEvent object. */
async function firstEvent(stream: RawStream, event: string): Promise<Record<string, unknown>> {
  const text = await stream.until((t) => t.includes(`event: ${event}\n`) && /\n\n/.test(t.slice(t.indexOf(`event: ${event}\n`))), 5_000, `an ${event} event`);
  const frame = text.slice(text.indexOf(`event: ${event}\n`)).split('\n\n')[0] as string;
  const fields: Record<string, unknown> = {};
  for (const line of frame.split('\n')) {
    const [name, ...rest] = line.split(': ');
    fields[name as string] = name === 'data' ? JSON.parse(rest.join(': ')) : rest.join(': ');
  }
  return fields;
}

const poll = '/api/ai/progress/{bookId}';
const book = bookId('oa');

describe('answers match the OpenAPI document', () => {
  it('operations: /healthz, /readyz, /metrics, /api/openapi.json, /api/session, /api/admin', async () => {
    await check(call('/healthz', 'none'), 200, 'get', '/healthz');
    await check(call('/readyz', 'none'), 200, 'get', '/readyz');
    await check(call('/metrics', 'admin'), 200, 'get', '/metrics');
    await check(call('/metrics', 'none'), 401, 'get', '/metrics');
    await check(call('/metrics', 'reader'), 403, 'get', '/metrics');
    await check(call('/api/openapi.json', 'none'), 200, 'get', '/api/openapi.json');
    const session = await check(call('/api/session', 'reader'), 200, 'get', '/api/session');
    expect(session.data).toMatchObject({ auth: true, sub: 'rita', tenant: 'acme', scopes: ['progress:read'] });
    await check(call('/api/session', 'expired'), 401, 'get', '/api/session');
    await check(call('/api/admin/status', 'admin'), 200, 'get', '/api/admin/status');
    await check(call('/api/admin/status', 'forged'), 401, 'get', '/api/admin/status');
    await check(call('/api/admin/status', 'writer'), 403, 'get', '/api/admin/status');
    const adopted = await check(call('/api/admin/adopt', 'admin', { body: { tenant: 'acme', books: ['oa-nobody'] } }), 200, 'post', '/api/admin/adopt');
    expect(adopted.data).toEqual({ tenant: 'acme', adopted: [], unchanged: [], refused: [{ bookId: 'oa-nobody', reason: 'no such book' }] });
    await check(call('/api/admin/adopt', 'admin', { body: { tenant: 'acme' } }), 400, 'post', '/api/admin/adopt');
    await check(call('/api/admin/adopt', 'none', { body: { tenant: 'acme', untenanted: true } }), 401, 'post', '/api/admin/adopt');
    await check(call('/api/admin/adopt', 'other', { body: { tenant: 'globex', untenanted: true } }), 403, 'post', '/api/admin/adopt');
  });

  it('publish and poll: 200, 304, 400, 401, 403, 404, 413, 429', async () => {
    const path = '/api/ai/progress/{bookId}';
    const first = await check(call(`/api/ai/progress/${book}`, 'writer', { body: { status: 'GENERATING', generationStep: 'CHAPTERS', currentChapter: 1, totalChapters: 3, title: 'OpenAPI' } }), 200, 'post', path);
    expect(first.data.version).toBe(1);
    await check(call(`/api/ai/progress/${book}`, 'publisher', { body: { message: 'from a worker' } }), 200, 'post', path);
    await check(call(`/api/ai/progress/${book}`, 'writer', { body: { overalProgress: 5 } }), 400, 'post', path);
    await check(call(`/api/ai/progress/${book}`, 'writer', { body: '{not json' }), 400, 'post', path);
    await check(call(`/api/ai/progress/${book}`, 'none', { body: {} }), 401, 'post', path);
    await check(call(`/api/ai/progress/${book}`, 'forged', { body: {} }), 401, 'post', path);
    await check(call(`/api/ai/progress/${book}`, 'reader', { body: {} }), 403, 'post', path);
    await check(call(`/api/ai/progress/${book}`, 'other', { body: {} }), 404, 'post', path);
    await check(call(`/api/ai/progress/${book}`, 'writer', { body: { message: 'x'.repeat(70_000) } }), 413, 'post', path);

    const polled = await call(`/api/ai/progress/${book}`, 'reader');
    const etag = polled.headers.get('etag') as string;
    expect(polled.headers.get('x-progress-source')).toBe('redis');
    await check(Promise.resolve(polled), 200, 'get', poll);
    // Followed now: the next polls are the edge's fast path, the same answers.
    await check(call(`/api/ai/progress/${book}`, 'reader'), 200, 'get', poll);
    await check(call(`/api/ai/progress/${book}`, 'reader', { headers: { 'if-none-match': etag } }), 304, 'get', poll);
    await check(call('/api/ai/progress/bad%20id', 'reader'), 400, 'get', poll);
    await check(call(`/api/ai/progress/${book}`, 'expired'), 401, 'get', poll);
    await check(call(`/api/ai/progress/${book}`, 'flooder'), 404, 'get', poll);
    const writeOnly = await mintToken({ sub: 'wanda', tenant: 'acme', scope: 'books:write' });
    await check(fetch(`${service.url}/api/ai/progress/${book}`, { headers: bearer(writeOnly) }), 403, 'get', poll);

    const statuses: number[] = [];
    for (let i = 0; i < RATE * 20 && !statuses.includes(429); i++) {
      const res = await call(`/api/ai/progress/${bookId('flood')}`, 'flooder', { body: { message: `flood ${i}` } });
      statuses.push(res.status);
      if (res.status === 429) await contract.expectDocumented(res, 'post', path);
      else await res.body?.cancel();
    }
    expect(statuses).toContain(429);
  });

  it('live text: append 200, 400, 409 with details, 404; the chapter being written 200, 304, 400, 404', async () => {
    const path = '/api/ai/progress/{bookId}/text';
    await check(call(`/api/ai/progress/${book}/text`, 'writer', { body: { chapter: 1, section: 1, offset: 0, text: 'It was a bright cold day' } }), 200, 'post', path);
    await check(call(`/api/ai/progress/${book}/text`, 'writer', { body: { chapter: 1, section: 1, offset: 0, text: '' } }), 400, 'post', path);
    const mismatch = await check(call(`/api/ai/progress/${book}/text`, 'writer', { body: { chapter: 1, section: 1, offset: 3, text: 'x' } }), 409, 'post', path);
    expect(mismatch.error).toEqual({ code: 'offset_mismatch', message: expect.any(String), details: { length: 24 } });
    await check(call(`/api/ai/progress/${book}/text`, 'other', { body: { chapter: 1, section: 1, offset: 24, text: 'x' } }), 404, 'post', path);
    await check(call(`/api/ai/progress/${book}/text`, 'none', { body: { chapter: 1, section: 1, offset: 24, text: 'x' } }), 401, 'post', path);

    const chapter = '/api/books/{bookId}/chapters/{n}';
    const live = await call(`/api/books/${book}/chapters/1?from=3`, 'reader');
    const etag = live.headers.get('etag') as string;
    const body = await check(Promise.resolve(live), 200, 'get', chapter);
    expect(body.data).toMatchObject({ saved: false, from: 3, length: 24, sections: [{ section: 1, attempt: 1, length: 24 }] });
    await check(call(`/api/books/${book}/chapters/1?from=3`, 'reader', { headers: { 'if-none-match': etag } }), 304, 'get', chapter);
    await check(call(`/api/books/${book}/chapters/0`, 'reader'), 400, 'get', chapter);
    await check(call(`/api/books/${book}/chapters/2`, 'reader'), 404, 'get', chapter);
    await check(call(`/api/books/${book}/chapters/1`, 'other'), 404, 'get', chapter);
    await check(call(`/api/books/${book}/chapters/1`, 'none'), 401, 'get', chapter);
  });

  it('SSE: each stream\'s events (live text too) are SseEvent; 204 for a client with the final state, 400, 401, 404', async () => {
    const one = await RawStream.open(`${service.url}/api/ai/progress/${book}/stream`, bearer(tokens.reader));
    try {
      await contract.expectDocumented(one.response, 'get', '/api/ai/progress/{bookId}/stream', { body: false });
      expect(one.response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const event = await firstEvent(one, 'progress');
      expect(event).toMatchObject({ event: 'progress', id: '2' });
      contract.expectSchema('SseEvent', event);
    } finally {
      one.close();
    }
    const many = await RawStream.open(`${service.url}/api/ai/stream?books=${book}`, bearer(tokens.reader));
    try {
      await contract.expectDocumented(many.response, 'get', '/api/ai/stream', { body: false });
      contract.expectSchema('SseEvent', await firstEvent(many, 'progress'));
    } finally {
      many.close();
    }
    const withText = await RawStream.open(`${service.url}/api/ai/progress/${book}/stream?text=1`, bearer(tokens.reader));
    try {
      const text = await firstEvent(withText, 'text');
      expect(text).toMatchObject({ event: 'text', data: { bookId: book, chapter: 1, section: 1, offset: 0, text: 'It was a bright cold day' } });
      contract.expectSchema('SseEvent', text);
    } finally {
      withText.close();
    }
    contract.expectSchema('SseEvent', { event: 'chapter', id: '3;2:1:1:24', data: { bookId: book, chapter: 1, saved: true } });
    contract.expectSchema('SseEvent', { event: 'auth', data: { code: 'token_expired' } });
    expect(contract.validator('components', 'schemas', 'SseEvent')({ event: 'progress', data: { bookId: book } })).toBe(false);

    const done = bookId('oa-done');
    const final = await check(call(`/api/ai/progress/${done}`, 'writer', { body: { status: 'COMPLETE', generationStep: 'COMPLETE', overallProgress: 100 } }), 200, 'post', poll);
    await check(call(`/api/ai/progress/${done}/stream`, 'reader', { headers: { 'last-event-id': String(final.data.version) } }), 204, 'get', '/api/ai/progress/{bookId}/stream');
    await check(call(`/api/ai/stream?books=${done}`, 'reader', { headers: { 'last-event-id': String(final.data.version) } }), 204, 'get', '/api/ai/stream');
    await check(call(`/api/ai/progress/${book}/stream`, 'reader', { headers: { 'last-event-id': 'x' } }), 400, 'get', '/api/ai/progress/{bookId}/stream');
    await check(call(`/api/ai/stream?books=,`, 'reader'), 400, 'get', '/api/ai/stream');
    await check(call(`/api/ai/progress/${book}/stream`, 'none'), 401, 'get', '/api/ai/progress/{bookId}/stream');
    await check(call(`/api/ai/stream`, 'forged'), 401, 'get', '/api/ai/stream');
    await check(call(`/api/ai/progress/${book}/stream`, 'other'), 404, 'get', '/api/ai/progress/{bookId}/stream');
    await check(call(`/api/ai/stream?books=${book}`, 'other'), 404, 'get', '/api/ai/stream');
  });

  it('WebSocket: 101 with messages (live text too) of WsClientMessage / WsServerMessage, 426 without Upgrade, 401 and 403 before upgrading', async () => {
    const wsUrl = `${service.url.replace(/^http/, 'ws')}/api/ai/ws`;
    const opened = await tryWebSocket(`${wsUrl}?access_token=${tokens.reader}`);
    expect(opened.status).toBe(101);
    contract.checked.add('get /api/ai/ws 101');
    const ws = (opened as { ws: WebSocket }).ws;
    try {
      const received: unknown[] = [];
      ws.on('message', (data) => received.push(JSON.parse(String(data))));
      const subscribe = { type: 'subscribe', books: [book], versions: { [book]: 0 }, text: true };
      contract.expectSchema('WsClientMessage', subscribe);
      ws.send(JSON.stringify(subscribe));
      ws.send(JSON.stringify({ type: 'subscribe', books: ['someone-elses'] }));
      ws.send('{"type":"shout"}');
      const refreshed = await mintToken({ sub: 'rita', tenant: 'acme', scope: 'progress:read' }, { ttlSeconds: 1_200 });
      ws.send(JSON.stringify({ type: 'auth', token: refreshed }));
      await until(() => ['progress', 'text', 'error', 'auth'].every((type) => received.some((m) => (m as { type: string }).type === type)), 5_000, 'a progress, a text, an error and an auth message');
      for (const message of received) contract.expectSchema('WsServerMessage', message);
      expect(contract.validator('components', 'schemas', 'WsClientMessage')({ type: 'shout' })).toBe(false);
    } finally {
      ws.close();
    }
    await check(call('/api/ai/ws', 'reader'), 426, 'get', '/api/ai/ws');
    for (const [status, url, origin] of [
      [401, wsUrl, undefined],
      [403, `${wsUrl}?access_token=${tokens.reader}`, 'https://evil.example'],
    ] as const) {
      const refused = await tryWebSocket(url, origin);
      expect(refused.status).toBe(status);
      contract.expectSchema('Error', JSON.parse((refused as { body: string }).body));
      contract.checked.add(`get /api/ai/ws ${status}`);
    }
  });

  it('books: start 201, list, read, timeline, saved chapter, cancel 200 / 202 / 409, retry 202 / 409; 400, 401, 403, 404', async () => {
    const started = await check(call('/api/books', 'writer', { body: { title: 'A contract', chapters: 1, sectionsPerChapter: 1 } }), 201, 'post', '/api/books');
    const id = started.data.bookId as string;
    await check(call('/api/books', 'writer', { body: { title: '' } }), 400, 'post', '/api/books');
    await check(call('/api/books', 'reader', { body: { title: 'no scope' } }), 403, 'post', '/api/books');
    await check(call('/api/books', 'none', { body: { title: 'no token' } }), 401, 'post', '/api/books');
    await until(async () => (await (await call(`/api/ai/progress/${id}`, 'reader')).json()).data?.status === 'COMPLETE', 15_000, 'the demo book completes');

    const list = await check(call('/api/books?limit=10', 'reader'), 200, 'get', '/api/books');
    expect(list.data.map((b: { bookId: string }) => b.bookId)).toContain(id);
    await check(call('/api/books?limit=0', 'reader'), 400, 'get', '/api/books');
    await check(call('/api/books', 'none'), 401, 'get', '/api/books');
    const detail = await check(call(`/api/books/${id}`, 'reader'), 200, 'get', '/api/books/{bookId}');
    expect(detail.data.chapters).toHaveLength(1);
    await check(call(`/api/books/${id}`, 'other'), 404, 'get', '/api/books/{bookId}');
    await check(call('/api/books/bad%20id', 'reader'), 400, 'get', '/api/books/{bookId}');
    await check(call(`/api/books/${id}`, 'expired'), 401, 'get', '/api/books/{bookId}');
    // Recorded by the server's timeline feed too; the recorder's writes are idempotent.
    const timed = bookId('oa-timed');
    const states = [];
    for (const update of [{ status: 'GENERATING', generationStep: 'RESEARCH' }, { generationStep: 'OUTLINE' }]) {
      states.push((await check(call(`/api/ai/progress/${timed}`, 'writer', { body: update }), 200, 'post', poll)).data);
    }
    const handle = await openDatabase(database.url, '', 5_000);
    try {
      await new TimelineRecorder(handle.db).record(states);
    } finally {
      await handle.close();
    }
    const timeline = await check(call(`/api/books/${timed}/timeline`, 'reader'), 200, 'get', '/api/books/{bookId}/timeline');
    expect(timeline.data.steps.map((step: { step: string }) => step.step)).toEqual(['RESEARCH', 'OUTLINE']);
    await check(call(`/api/books/${bookId('oa-unknown')}/timeline`, 'reader'), 404, 'get', '/api/books/{bookId}/timeline');
    const figures = await check(call(`/api/analytics?since=${Date.now() - 3_600_000}`, 'reader'), 200, 'get', '/api/analytics');
    expect(figures.data.runs.started).toBeGreaterThanOrEqual(1);
    await check(call('/api/analytics?since=yesterday', 'reader'), 400, 'get', '/api/analytics');
    await check(call('/api/analytics', 'none'), 401, 'get', '/api/analytics');
    await check(call('/api/analytics?tenant=somebody-else', 'reader'), 404, 'get', '/api/analytics');
    await check(call(`/api/books/bad%20id/timeline`, 'reader'), 400, 'get', '/api/books/{bookId}/timeline');
    await check(call(`/api/books/${id}/timeline`, 'none'), 401, 'get', '/api/books/{bookId}/timeline');
    const saved = await check(call(`/api/books/${id}/chapters/1`, 'reader'), 200, 'get', '/api/books/{bookId}/chapters/{n}');
    expect(saved.data.saved).toBe(true);

    const cancel = '/api/books/{bookId}/cancel';
    const retry = '/api/books/{bookId}/retry';
    await check(call(`/api/books/${id}/cancel`, 'writer', { method: 'POST' }), 409, 'post', cancel);
    await check(call(`/api/books/${id}/retry`, 'writer', { method: 'POST' }), 409, 'post', retry);
    const long = (await check(call('/api/books', 'writer', { body: { title: 'Long', chapters: 50, sectionsPerChapter: 20 } }), 201, 'post', '/api/books')).data.bookId as string;
    const cancelled = await call(`/api/books/${long}/cancel`, 'writer', { method: 'POST' });
    expect([200, 202]).toContain(cancelled.status);
    await contract.expectDocumented(cancelled, 'post', cancel);
    await until(async () => (await (await call(`/api/ai/progress/${long}`, 'reader')).json()).data?.status === 'ERROR', 5_000, 'the cancelled book is ERROR');
    await check(call(`/api/books/${long}/retry`, 'writer', { method: 'POST' }), 202, 'post', retry);
    // Stop the retried run: a cancel lands at once (200) or, behind a slow backend, later (202).
    const again = await call(`/api/books/${long}/cancel`, 'writer', { method: 'POST' });
    expect([200, 202]).toContain(again.status);
    await contract.expectDocumented(again, 'post', cancel);
    for (const [path, template] of [[`/api/books/${long}/cancel`, cancel], [`/api/books/${long}/retry`, retry]] as const) {
      await check(call(path, 'other', { method: 'POST' }), 404, 'post', template);
      await check(call(path, 'reader', { method: 'POST' }), 403, 'post', template);
      await check(call(path, 'none', { method: 'POST' }), 401, 'post', template);
      await check(call(path.replace(long, 'bad%20id'), 'writer', { method: 'POST' }), 400, 'post', template);
    }
  }, 40_000);

  it('503 with Retry-After while Redis, then Postgres, is cut', async () => {
    const path = '/api/ai/progress/{bookId}';
    // acme's publish bucket (its text appends count too) refills first: the answers below are the outage's, not the quota's.
    await waitOut(2_000);
    redisProxy.cut();
    try {
      await check(call(`/api/ai/progress/${book}`, 'writer', { body: { message: 'during the outage' } }), 503, 'post', path);
      await check(call(`/api/ai/progress/${book}/text`, 'writer', { body: { chapter: 1, section: 1, offset: 24, text: '.' } }), 503, 'post', '/api/ai/progress/{bookId}/text');
      await check(call('/readyz', 'none'), 503, 'get', '/readyz');
      databaseProxy.cut();
      await check(call('/api/books', 'reader'), 503, 'get', '/api/books');
      await check(call('/api/books', 'writer', { body: { title: 'in the dark' } }), 503, 'post', '/api/books');
      await check(call(`/api/ai/progress/${bookId('unknown')}`, 'reader'), 503, 'get', poll);
    } finally {
      databaseProxy.heal();
      redisProxy.heal();
    }
    await until(async () => (await call('/readyz', 'none')).status === 200, 10_000, 'ready again');
  }, 20_000);

  it('every operation of the document was checked against a real answer', () => {
    expect(contract.unchecked()).toEqual([]);
    const statuses = new Set([...contract.checked].map((entry) => Number(entry.split(' ')[2])));
    for (const status of [101, 200, 201, 202, 204, 304, 400, 401, 403, 404, 409, 413, 426, 429, 503]) expect(statuses, String(status)).toContain(status);
  });
});

