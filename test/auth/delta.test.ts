import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { Service } from '../../src/service.js';
import { bookId, progressUrl } from '../server/http.js';
import { DeltaWatch } from '../support/delta-watch.js';
import { startServer } from '../support/service.js';
import { TEST_SECRET, bearer, mintToken } from '../support/tokens.js';
import { until, withTimeout } from '../support/wait.js';

const READ_WRITE = 'progress:read progress:write books:write';
let service: Service;
let alice: string; // tenant acme
let bob: string; // tenant globex
let expired: string;
let forged: string;
const closers: Array<() => void> = [];

beforeAll(async () => {
  service = await startServer({ AUTH_JWT_SECRET: TEST_SECRET });
  alice = await mintToken({ sub: 'alice', tenant: 'acme', scope: READ_WRITE });
  bob = await mintToken({ sub: 'bob', tenant: 'globex', scope: READ_WRITE });
  expired = await mintToken({ sub: 'alice', tenant: 'acme', scope: READ_WRITE }, { ttlSeconds: -10 });
  forged = await mintToken({ sub: 'alice', tenant: 'acme', scope: READ_WRITE }, { secret: 'another-secret-of-exactly-32-byte' });
});
afterEach(() => {
  for (const close of closers.splice(0)) close();
});
afterAll(async () => {
  await service.close();
});

async function publishAs(token: string, id: string, body: object): Promise<void> {
  const res = await fetch(progressUrl(service.url, id), { method: 'POST', headers: bearer(token, { 'content-type': 'application/json' }), body: JSON.stringify(body) });
  expect(res.status).toBe(200);
}

const refusals = () => [
  { label: 'no token', headers: {} as Record<string, string>, status: 401 },
  { label: "another tenant's token", headers: bearer(bob), status: 404 },
  { label: 'an expired token', headers: bearer(expired), status: 401 },
  { label: 'a forged token', headers: bearer(forged), status: 401 },
];

describe('delta streams are authorized exactly as progress', () => {
  it('per-book and multiplexed streams with delta=merge-patch: refused without a valid token of the tenant', async () => {
    const id = bookId('delta-auth');
    await publishAs(alice, id, { status: 'GENERATING', message: 'secret' });
    for (const path of [`/api/ai/progress/${id}/stream?delta=merge-patch`, `/api/ai/stream?books=${id}&delta=merge-patch`]) {
      for (const refusal of refusals()) {
        const res = await fetch(`${service.url}${path}`, { headers: refusal.headers });
        expect(res.status, `${refusal.label} on ${path}`).toBe(refusal.status);
        const body = (await res.json()) as { success: boolean; error: { code: string } };
        expect(body.success).toBe(false);
        if (refusal.status === 404) expect(body.error.code).toBe('not_found');
      }
      const ok = await fetch(`${service.url}${path}`, { headers: bearer(alice) });
      expect(ok.status).toBe(200);
      await ok.body?.cancel();
    }
    for (const refusal of refusals().filter((r) => r.status === 401)) {
      const res = await fetch(`${service.url}/api/ai/stream?delta=merge-patch`, { headers: refusal.headers });
      expect(res.status, `${refusal.label} on the every-book stream`).toBe(401);
    }
  });

  it("the every-book stream with deltas carries only the caller's tenant's states and patches", async () => {
    const theirs = new DeltaWatch(`${service.url}/api/ai/stream?delta=merge-patch&access_token=${bob}`);
    const mine = new DeltaWatch(`${service.url}/api/ai/stream?delta=merge-patch&access_token=${alice}`);
    closers.push(() => theirs.close(), () => mine.close());
    await Promise.all([theirs.opened(), mine.opened()]);
    const id = bookId('delta-all-auth');
    await publishAs(alice, id, { status: 'GENERATING', message: 'one' });
    await publishAs(alice, id, { message: 'two' });
    const his = bookId('delta-bobs');
    await publishAs(bob, his, { status: 'GENERATING', message: 'his' });
    await publishAs(bob, his, { message: 'his two' });
    await theirs.version(2, his);
    await mine.version(2, id);
    expect(theirs.states.some((s) => s.bookId === id)).toBe(false);
    expect(theirs.unpatchable).toEqual([]);
    expect(mine.events.filter((e, i) => mine.states[i]?.bookId === id).map((e) => e.kind)).toEqual(['progress', 'patch']);
  });

  it("a WebSocket subscribe with delta to another tenant's book is not_found", async () => {
    const id = bookId('delta-ws-auth');
    await publishAs(alice, id, { status: 'GENERATING', message: 'secret' });
    const ws = new WebSocket(`${service.url.replace('http', 'ws')}/api/ai/ws`, { headers: bearer(bob) });
    closers.push(() => ws.terminate());
    const messages: Array<{ type: string; error?: { code: string } }> = [];
    ws.on('message', (data) => messages.push(JSON.parse(data.toString()) as (typeof messages)[number]));
    await withTimeout(once(ws, 'open'), 5_000, 'the WebSocket to open');
    ws.send(JSON.stringify({ type: 'subscribe', books: [id], delta: 'merge-patch' }));
    await until(() => messages.length > 0, 5_000, 'the answer');
    expect(messages.map((m) => [m.type, m.error?.code])).toEqual([['error', 'not_found']]);
  });
});
