import { get } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { startServer } from '../support/service.js';
import { tryWebSocket } from '../support/upgrade.js';
import { withTimeout } from '../support/wait.js';
import { bookId, expectError, published } from './http.js';

const ALLOWED = 'http://app.example.test:8080';
const OTHER = 'http://evil.example.test';
const CORS_HEADERS = ['access-control-allow-origin', 'access-control-allow-credentials', 'access-control-expose-headers'];

let service: Service;
let open: Service;

beforeAll(async () => {
  [service, open] = await Promise.all([startServer({ CORS_ORIGINS: `${ALLOWED}, http://second.example.test` }), startServer()]);
});
afterAll(async () => {
  await Promise.all([service?.close(), open?.close()]);
});

/** The status and headers of a GET, without reading the body (an SSE stream never ends). */
function headersOf(url: string, headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = get(url, { headers }, (res) => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers });
        res.destroy();
      });
      req.on('error', reject);
    }),
    5_000,
    `the headers of ${url}`,
  );
}

function expectCors(headers: Headers | IncomingHttpHeaders, origin: string): void {
  const read = (name: string) => (headers instanceof Headers ? headers.get(name) : headers[name]);
  expect(read('access-control-allow-origin')).toBe(origin);
  expect(read('access-control-allow-credentials')).toBe('true');
  expect(read('access-control-expose-headers')).toBe('ETag, Retry-After, X-Progress-Source, Location, WWW-Authenticate');
  expect(read('vary')).toMatch(/Origin/);
}

describe('CORS_ORIGINS', () => {
  it('answers a preflight from a listed origin for the methods and headers the API takes', async () => {
    const res = await fetch(`${service.url}/api/ai/progress/any-book`, {
      method: 'OPTIONS',
      headers: { Origin: ALLOWED, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(res.headers.get('access-control-allow-methods')).toBe('GET, HEAD, POST, OPTIONS');
    expect(res.headers.get('access-control-allow-headers')).toBe('Authorization, Content-Type, If-None-Match, Last-Event-ID');
    expect(Number(res.headers.get('access-control-max-age'))).toBeGreaterThan(0);
    expect(res.headers.get('vary')).toBe('Origin, Authorization, Cookie');
  });

  it('refuses a preflight from any other origin, with no CORS header', async () => {
    const res = await fetch(`${service.url}/api/ai/stream`, { method: 'OPTIONS', headers: { Origin: OTHER, 'Access-Control-Request-Method': 'GET' } });
    await expectError(res, 403, 'origin_not_allowed');
    for (const name of [...CORS_HEADERS, 'access-control-allow-methods']) expect(res.headers.get(name)).toBeNull();
  });

  it('adds the headers to polls (Hono path, fast path, 304), publishing, errors and SSE for a listed origin only', async () => {
    const id = bookId('cors');
    const state = await published(service.url, id, { message: 'hello' });
    const poll = (origin: string, extra: Record<string, string> = {}) => fetch(`${service.url}/api/ai/progress/${id}`, { headers: { Origin: origin, ...extra } });

    const first = await poll(ALLOWED); // not followed yet: the Hono route
    expect(first.status).toBe(200);
    expectCors(first.headers, ALLOWED);
    const fast = await poll(ALLOWED); // followed now: answered before Hono
    expect(fast.headers.get('x-progress-source')).toBe(first.headers.get('x-progress-source'));
    expectCors(fast.headers, ALLOWED);
    const notModified = await poll(ALLOWED, { 'If-None-Match': `"${state.version}"` });
    expect(notModified.status).toBe(304);
    expectCors(notModified.headers, ALLOWED);

    const other = await poll(OTHER);
    expect(other.status).toBe(200);
    for (const name of CORS_HEADERS) expect(other.headers.get(name)).toBeNull();
    expect(other.headers.get('vary')).toBe('Origin, Authorization, Cookie');

    const post = await fetch(`${service.url}/api/ai/progress/${id}`, { method: 'POST', headers: { Origin: ALLOWED, 'content-type': 'application/json' }, body: '{"message":"again"}' });
    expect(post.status).toBe(200);
    expectCors(post.headers, ALLOWED);
    const missing = await fetch(`${service.url}/api/ai/progress/no-such-book-${id}`, { headers: { Origin: ALLOWED } });
    await expectError(missing, 404, 'not_found');
    expectCors(missing.headers, ALLOWED);

    for (const path of [`/api/ai/progress/${id}/stream`, `/api/ai/stream?books=${id}`, '/api/ai/stream']) {
      const sse = await headersOf(`${service.url}${path}`, { Origin: ALLOWED, Accept: 'text/event-stream' });
      expect(sse.status).toBe(200);
      expect(sse.headers['content-type']).toMatch(/^text\/event-stream/);
      expectCors(sse.headers, ALLOWED);
      const refused = await headersOf(`${service.url}${path}`, { Origin: OTHER });
      for (const name of CORS_HEADERS) expect(refused.headers[name]).toBeUndefined();
    }
  });

  it('sends no CORS header at all when unset', async () => {
    const id = bookId('no-cors');
    await published(open.url, id, { message: 'x' });
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${open.url}/api/ai/progress/${id}`, { headers: { Origin: ALLOWED } });
      expect(res.status).toBe(200);
      for (const name of CORS_HEADERS) expect(res.headers.get(name)).toBeNull();
      expect(res.headers.get('vary')).toBe('Authorization, Cookie');
    }
    const preflight = await fetch(`${open.url}/api/ai/progress/${id}`, { method: 'OPTIONS', headers: { Origin: ALLOWED, 'Access-Control-Request-Method': 'GET' } });
    expect(preflight.status).toBe(404);
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('WebSocket Origin check', () => {
  const wsUrl = (s: Service) => `${s.url.replace('http', 'ws')}/api/ai/ws`;

  it('lets a listed origin, the server\'s own origin and clients without Origin connect', async () => {
    const own = new URL(service.url).origin;
    for (const origin of [ALLOWED, own, undefined]) {
      const result = await tryWebSocket(wsUrl(service), origin);
      expect(result.status, `origin ${origin}`).toBe(101);
      if ('ws' in result) result.ws.terminate();
    }
  });

  it('refuses any other origin with 403 before upgrading, also when CORS_ORIGINS is unset', async () => {
    for (const target of [service, open]) {
      const result = await tryWebSocket(wsUrl(target), OTHER);
      expect(result.status).toBe(403);
      expect('body' in result && JSON.parse(result.body).error.code).toBe('origin_not_allowed');
    }
    const same = await tryWebSocket(wsUrl(open), new URL(open.url).origin);
    expect(same.status).toBe(101);
    if ('ws' in same) same.ws.terminate();
  });

  it('answers a plain GET of the WebSocket path with 426 Upgrade Required', async () => {
    const res = await fetch(`${service.url}/api/ai/ws`);
    await expectError(res, 426, 'upgrade_required');
    expect(res.headers.get('upgrade')).toBe('websocket');
  });
});
