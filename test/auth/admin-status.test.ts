import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { AdminStatus } from '../../src/server/http/admin-status.js';
import type { Service } from '../../src/service.js';
import { RawStream, bookId, expectError, progressUrl } from '../server/http.js';
import { startServer } from '../support/service.js';
import { TEST_SECRET, bearer, mintToken } from '../support/tokens.js';
import { withTimeout } from '../support/wait.js';

let service: Service;
let alice: string; // tenant acme, no admin
let admin: string; // tenant ops
let otherAdmin: string; // tenant globex: admin is cross-tenant, so it sees the same
let expiredAdmin: string;
let forgedAdmin: string;

beforeAll(async () => {
  service = await startServer({ AUTH_JWT_SECRET: TEST_SECRET, DEMO_STEP_MS: '100' });
  alice = await mintToken({ sub: 'alice', tenant: 'acme', scope: 'progress:read progress:write books:write' });
  admin = await mintToken({ sub: 'operator', tenant: 'ops', scope: 'admin' });
  otherAdmin = await mintToken({ sub: 'root', tenant: 'globex', scope: 'admin' });
  expiredAdmin = await mintToken({ sub: 'operator', tenant: 'ops', scope: 'admin' }, { ttlSeconds: -10 });
  forgedAdmin = await mintToken({ sub: 'operator', tenant: 'ops', scope: 'admin' }, { secret: 'another-secret-of-exactly-32-byte' });
});
afterAll(async () => {
  await service?.close();
});

const status = async (token: string): Promise<AdminStatus> => {
  const res = await fetch(`${service.url}/api/admin/status`, { headers: bearer(token) });
  expect(res.status, await res.clone().text()).toBe(200);
  expect(res.headers.get('cache-control')).toBe('private, no-cache');
  return ((await res.json()) as { data: AdminStatus }).data;
};

describe('GET /api/admin/status', () => {
  it('is refused without a token, with an expired, a forged or a non-admin one', async () => {
    const url = `${service.url}/api/admin/status`;
    await expectError(await fetch(url), 401, 'unauthorized');
    await expectError(await fetch(url, { headers: bearer(expiredAdmin) }), 401, 'invalid_token');
    await expectError(await fetch(url, { headers: bearer(forgedAdmin) }), 401, 'invalid_token');
    await expectError(await fetch(url, { headers: bearer(alice) }), 403, 'insufficient_scope');
    await expectError(await fetch(`${url}?access_token=${alice}`), 403, 'insufficient_scope');
  });

  it("counts connections by transport and tenant, the books watched, and the runs with their owners and leases, for any tenant's admin", async () => {
    const id = bookId('watched');
    const res = await fetch(progressUrl(service.url, id), { method: 'POST', headers: bearer(alice, { 'content-type': 'application/json' }), body: JSON.stringify({ message: 'x' }) });
    expect(res.status).toBe(200);
    const before = await status(admin);
    const sse = await RawStream.open(`${progressUrl(service.url, id)}/stream`, bearer(alice));
    const all = await RawStream.open(`${service.url}/api/ai/stream`, bearer(alice));
    const ws = new WebSocket(`${service.url.replace('http', 'ws')}/api/ai/ws`, { headers: { authorization: `Bearer ${alice}` } });
    try {
      await sse.until((t) => t.includes('event: progress'));
      await withTimeout(once(ws, 'open'), 5_000, 'the WebSocket to open');
      const during = await status(otherAdmin);
      expect(during.connections.byTransport.sse).toBe(before.connections.byTransport.sse + 1);
      expect(during.connections.byTransport['every-book']).toBe(before.connections.byTransport['every-book'] + 1);
      expect(during.connections.byTransport.websocket).toBe(before.connections.byTransport.websocket + 1);
      expect(during.connections.byTenant.find((t) => t.tenant === 'acme')).toMatchObject({ total: 3, sse: 1, 'every-book': 1, websocket: 1 });
      expect(during.books.list).toContainEqual({ bookId: id, watchers: 1, tenant: 'acme' });
      expect(during.health).toMatchObject({ ready: true, broker: 'ok', database: 'ok' });

      // Polls are counted per minute of the clock (one may end between the two reads: both minutes together).
      for (let i = 0; i < 2; i++) expect((await fetch(progressUrl(service.url, id), { headers: bearer(alice) })).status).toBe(200);
      const polled = (await status(admin)).connections.polls;
      expect(polled.thisMinute + polled.lastMinute).toBeGreaterThanOrEqual(during.connections.polls.thisMinute + 2);
      expect(polled.polledBooks).toBeGreaterThanOrEqual(1);
    } finally {
      sse.close();
      all.close();
      ws.terminate();
    }

    // A generation shows with its owner (this process) and its lease while it runs.
    const started = await fetch(`${service.url}/api/books`, { method: 'POST', headers: bearer(alice, { 'content-type': 'application/json' }), body: JSON.stringify({ title: 'Watched run', chapters: 2, sectionsPerChapter: 1 }) });
    const book = ((await started.json()) as { data: { bookId: string } }).data.bookId;
    const running = await status(admin);
    const run = running.generations.runs?.find((r) => r.bookId === book);
    expect(run).toMatchObject({ tenant: 'acme', state: 'running', owner: running.process.owner, retry: false });
    expect(run!.leaseUntil).toBeGreaterThan(running.at);
    await service.orchestrator.settled(book);
    expect((await status(admin)).generations.runs?.find((r) => r.bookId === book)).toBeUndefined();
  });
});

describe('GET /admin', () => {
  it('is a page without data, under the dashboard CSP (no inline script or style)', async () => {
    const res = await fetch(`${service.url}/admin`);
    expect(res.status).toBe(200);
    const html = await res.text();
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)/);
    expect(html).not.toMatch(/<style|style=/);
    expect(html).toContain('assets/admin.js');
  });
});
