import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { Service } from '../../src/service.js';
import { bookId, expectError, progressUrl } from '../server/http.js';
import { startServer } from '../support/service.js';
import { TEST_SECRET, bearer, mintToken } from '../support/tokens.js';

const LISTED = 'https://app.example.com';
let service: Service;
let cookie: string;
let token: string;

beforeAll(async () => {
  service = await startServer({ AUTH_JWT_SECRET: TEST_SECRET, CORS_ORIGINS: LISTED });
  token = await mintToken({ sub: 'alice', tenant: 'acme', scope: 'progress:read progress:write books:write' });
  cookie = `booksai_token=${token}`;
});
afterAll(async () => {
  await service.close();
});

/** A POST as a browser sends a form or fetch: `text/plain` needs no preflight. */
const post = (path: string, headers: Record<string, string>, body = '{"message":"x"}') =>
  fetch(`${service.url}${path}`, { method: 'POST', headers: { 'content-type': 'text/plain', ...headers }, body });

describe('cross-site request forgery', () => {
  it("refuses a write authorized by the cookie alone from another site's page, or without an Origin", async () => {
    const id = bookId('csrf');
    for (const origin of ['https://evil.example.test', 'null', undefined]) {
      const headers: Record<string, string> = { cookie, ...(origin === undefined ? {} : { origin }) };
      await expectError(await post(`/api/ai/progress/${id}`, headers), 403, 'origin_not_allowed');
      await expectError(await post('/api/books', headers, '{"title":"Forged"}'), 403, 'origin_not_allowed');
    }
    // Nothing was written.
    await expectError(await fetch(progressUrl(service.url, id), { headers: bearer(token) }), 404, 'not_found');
    const list = (await (await fetch(`${service.url}/api/books`, { headers: bearer(token) })).json()) as { data: Array<{ title: string }> };
    expect(list.data.some((b) => b.title === 'Forged')).toBe(false);
  });

  it('takes the same write from a listed origin or the server\'s own pages, and from any client sending the token itself', async () => {
    const id = bookId('csrf-ok');
    expect((await post(`/api/ai/progress/${id}`, { cookie, origin: LISTED })).status).toBe(200);
    expect((await post(`/api/ai/progress/${id}`, { cookie, origin: new URL(service.url).origin })).status).toBe(200);
    // A Bearer header is not ambient: no page can make the browser send it.
    expect((await post(`/api/ai/progress/${id}`, { ...bearer(token), origin: 'https://evil.example.test' })).status).toBe(200);
    // Reads with the cookie stay open to any page (the browser keeps their answers from it without CORS).
    expect((await fetch(progressUrl(service.url, id), { headers: { cookie, origin: 'https://evil.example.test' } })).status).toBe(200);
  });
});

describe('GET /api/ai/ws without Upgrade', () => {
  it('answers 426 upgrade_required, token or not', async () => {
    for (const headers of [{}, bearer(token)]) {
      const res = await fetch(`${service.url}/api/ai/ws`, { headers });
      expect(res.headers.get('upgrade')).toBe('websocket');
      await expectError(res, 426, 'upgrade_required');
    }
  });
});

describe('BASE_PATH', () => {
  it('refuses dot segments', () => {
    for (const bad of ['/..', '/.', '/a/../b', '/progress/.']) expect(() => loadConfig({ BASE_PATH: bad })).toThrow(/BASE_PATH/);
    expect(loadConfig({ BASE_PATH: '/progress/v1.2' }).basePath).toBe('/progress/v1.2');
  });
});
