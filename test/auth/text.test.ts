import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { Service } from '../../src/service.js';
import { bookId, progressUrl } from '../server/http.js';
import { startServer } from '../support/service.js';
import { TextWatch, textSocket } from '../support/text.js';
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

/** A book of alice's tenant, with text being written. */
async function alicesBook(label: string): Promise<string> {
  const id = bookId(label);
  const res = await fetch(progressUrl(service.url, id), { method: 'POST', headers: bearer(alice, { 'content-type': 'application/json' }), body: JSON.stringify({ status: 'GENERATING', message: 'writing' }) });
  expect(res.status).toBe(200);
  await service.texts.beginSection(id, 1, 1);
  await service.texts.append(id, { chapter: 1, section: 1, offset: 0 }, 'secret words');
  return id;
}

const none = { label: 'no token', headers: {} as Record<string, string>, status: 401 };
const refusals = () => [
  none,
  { label: "another tenant's token", headers: bearer(bob), status: 404 },
  { label: 'an expired token', headers: bearer(expired), status: 401 },
  { label: 'a forged token', headers: bearer(forged), status: 401 },
];

describe('live text is authorized exactly as progress', () => {
  it('SSE text on the per-book and multiplexed streams: refused without a valid token of the tenant', async () => {
    const id = await alicesBook('sse-auth');
    for (const path of [`/api/ai/progress/${id}/stream?text=1&textFrom=1:1:0`, `/api/ai/stream?books=${id}&text=1`]) {
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
  });

  it("the every-book stream with text carries only the caller's tenant's text", async () => {
    const theirs = new TextWatch(`${service.url}/api/ai/stream?text=1&access_token=${bob}`);
    const mine = new TextWatch(`${service.url}/api/ai/stream?text=1&access_token=${alice}`);
    closers.push(() => theirs.close(), () => mine.close());
    await Promise.all([theirs.opened, mine.opened]);
    const id = await alicesBook('all-auth');
    await service.texts.append(id, { chapter: 1, section: 1, offset: 12 }, ' and more');
    // Bob's own book, after alice's: once his arrives, alice's would have too.
    const his = bookId('bobs');
    const res = await fetch(progressUrl(service.url, his), { method: 'POST', headers: bearer(bob, { 'content-type': 'application/json' }), body: JSON.stringify({ message: 'his' }) });
    expect(res.status).toBe(200);
    await service.texts.beginSection(his, 1, 1);
    await service.texts.append(his, { chapter: 1, section: 1, offset: 0 }, 'his words');
    await until(() => mine.copy.text(id, 1, 1) === 'secret words and more', 5_000, "alice's text on her stream");
    await until(() => theirs.copy.text(his, 1, 1) === 'his words', 5_000, "bob's text on his stream");
    expect(theirs.copy.text(id, 1, 1)).toBe('');
    expect(mine.copy.text(his, 1, 1)).toBe('');
    for (const refusal of [none, { label: 'expired', headers: bearer(expired), status: 401 }, { label: 'forged', headers: bearer(forged), status: 401 }]) {
      const refused = await fetch(`${service.url}/api/ai/stream?text=1`, { headers: refusal.headers });
      expect(refused.status, refusal.label).toBe(401);
      await refused.body?.cancel();
    }
  });

  it('WebSocket text: the handshake refuses no, expired and forged tokens; another tenant gets not_found and no text', async () => {
    const id = await alicesBook('ws-auth');
    for (const token of [null, expired, forged]) {
      const ws = new WebSocket(`${service.url.replace('http', 'ws')}/api/ai/ws`, { headers: token ? bearer(token) : {} });
      closers.push(() => ws.terminate());
      ws.on('error', () => {});
      const [, response] = (await withTimeout(once(ws, 'unexpected-response'), 5_000, 'the refusal')) as [unknown, { statusCode: number }];
      expect(response.statusCode).toBe(401);
    }
    const other = await textSocket(service.url, undefined, bearer(bob));
    closers.push(() => other.ws.terminate());
    other.send({ type: 'subscribe', books: [id], text: true, textFrom: { [id]: '1:1:0' } });
    await until(() => other.messages.some((m) => m.type === 'error'), 5_000, 'the refusal');
    expect(other.messages).toEqual([expect.objectContaining({ type: 'error', bookId: id, error: expect.objectContaining({ code: 'not_found' }) })]);
    const owner = await textSocket(service.url, undefined, bearer(alice));
    closers.push(() => owner.ws.terminate());
    owner.send({ type: 'subscribe', books: [id], text: true });
    await until(() => owner.copy.text(id, 1, 1) === 'secret words', 5_000, "alice's text");
    await service.texts.append(id, { chapter: 1, section: 1, offset: 12 }, '!');
    await until(() => owner.copy.text(id, 1, 1) === 'secret words!', 5_000, 'the live chunk');
    expect(other.messages.filter((m) => m.type === 'text')).toEqual([]);
  });
});
