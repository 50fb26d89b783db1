import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { RawStream, bookId, expectError, progressEvents, progressUrl } from '../server/http.js';
import { startServer } from '../support/service.js';
import { TEST_SECRET, bearer, mintToken } from '../support/tokens.js';
import { until, withTimeout } from '../support/wait.js';

let service: Service;
const closers: Array<() => void> = [];

beforeAll(async () => {
  service = await startServer({ AUTH_JWT_SECRET: TEST_SECRET, MAX_CONNECTIONS_PER_USER: '2' });
});
afterEach(async () => {
  for (const close of closers.splice(0)) close();
  await until(() => service.streams.size === 0, 5_000, 'every stream to close');
});
afterAll(async () => {
  await service.close();
});

const writer = () => mintToken({ sub: 'orchestrator', tenant: 'acme', scope: 'progress:write' });
const reader = (ttlSeconds: number, sub = 'alice') => mintToken({ sub, tenant: 'acme' }, { ttlSeconds });
async function publish(id: string, body: object): Promise<BookProgress> {
  const res = await fetch(progressUrl(service.url, id), { method: 'POST', headers: bearer(await writer(), { 'content-type': 'application/json' }), body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: BookProgress }).data;
}
/** The second a token minted now with `ttlSeconds` expires at, in ms. */
const expiryOf = (token: string) => (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp * 1000;

async function socket(token: string) {
  const ws = new WebSocket(`${service.url.replace('http', 'ws')}/api/ai/ws`, { headers: { authorization: `Bearer ${token}` } });
  closers.push(() => ws.terminate());
  const messages: Array<{ type: string; data?: BookProgress & { expiresAt?: number }; error?: { code: string } }> = [];
  ws.on('message', (data) => messages.push(JSON.parse(data.toString())));
  await withTimeout(once(ws, 'open'), 5_000, 'the WebSocket to open');
  return { ws, messages, send: (message: unknown) => ws.send(JSON.stringify(message)) };
}

describe('an SSE stream', () => {
  it('ends when its token expires, with event: auth {"code":"token_expired"} and not a named error', async () => {
    const id = bookId('sse-exp');
    await publish(id, { message: 'x' });
    const token = await reader(2);
    const stream = await RawStream.open(`${progressUrl(service.url, id)}/stream`, bearer(token));
    await stream.until((text) => progressEvents(text).length === 1);
    const text = await stream.end(5_000);
    expect(Date.now()).toBeGreaterThanOrEqual(expiryOf(token));
    expect(text).toMatch(/event: auth\ndata: \{"code":"token_expired"\}\n\n$/);
    expect(text).not.toContain('event: error');
    // Reconnecting with the same token is refused; a fresh one resumes where the stream was.
    await expectError(await fetch(`${progressUrl(service.url, id)}/stream`, { headers: bearer(token) }), 401, 'invalid_token');
  });

  it('the every-book and multiplexed streams end at expiry too', async () => {
    const [a, b] = [bookId('mx-exp'), bookId('mx-exp')];
    await publish(a, { message: 'a' });
    await publish(b, { message: 'b' });
    const token = await reader(2);
    const list = await RawStream.open(`${service.url}/api/ai/stream?books=${a},${b}`, bearer(token));
    const all = await RawStream.open(`${service.url}/api/ai/stream`, bearer(token));
    closers.push(() => list.close(), () => all.close());
    for (const stream of [list, all]) expect(await stream.end(5_000)).toContain('event: auth\ndata: {"code":"token_expired"}');
  });
});

describe('a WebSocket', () => {
  it('is closed with 4401 at its token\'s exp', async () => {
    const id = bookId('ws-exp');
    await publish(id, { message: 'x' });
    const token = await reader(2);
    const client = await socket(token);
    client.send({ type: 'subscribe', books: [id] });
    const [code] = (await withTimeout(once(client.ws, 'close'), 5_000, 'the close')) as [number];
    expect(code).toBe(4401);
    expect(Date.now()).toBeGreaterThanOrEqual(expiryOf(token));
    expect(client.messages.some((m) => m.type === 'progress')).toBe(true);
  });

  it('refreshes in place with {"type":"auth","token"} before exp, and keeps receiving after the old exp', async () => {
    const id = bookId('ws-refresh');
    await publish(id, { message: 'x' });
    const first = await reader(2);
    const client = await socket(first);
    client.send({ type: 'subscribe', books: [id] });
    await until(() => client.messages.some((m) => m.type === 'progress'), 5_000, 'the first state');
    const fresh = await reader(600);
    client.send({ type: 'auth', token: fresh });
    await until(() => client.messages.some((m) => m.type === 'auth'), 5_000, 'the refresh to be acknowledged');
    expect(client.messages.find((m) => m.type === 'auth')?.data?.expiresAt).toBe(expiryOf(fresh));
    await until(() => Date.now() > expiryOf(first) + 500, 5_000, 'the first token to have expired');
    await publish(id, { message: 'after the old exp' });
    await until(() => client.messages.some((m) => m.data?.message === 'after the old exp'), 5_000, 'the update after the old exp');
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
  });

  it("refuses a refresh with another user's token, a bad one, or an expired one, and stays as it was", async () => {
    const client = await socket(await reader(600));
    for (const token of [await reader(600, 'mallory'), 'garbage', await reader(-5)]) client.send({ type: 'auth', token });
    await until(() => client.messages.filter((m) => m.type === 'error').length === 3, 5_000, 'three errors');
    expect(client.messages.map((m) => m.error?.code)).toEqual(['invalid_token', 'invalid_token', 'invalid_token']);
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe('MAX_CONNECTIONS_PER_USER', () => {
  it('refuses a user past the limit with 429 and Retry-After, on SSE and WebSocket; others are unaffected', async () => {
    const id = bookId('limit');
    await publish(id, { message: 'x' });
    const alice = await reader(600);
    const open = await Promise.all([0, 1].map(() => RawStream.open(`${progressUrl(service.url, id)}/stream`, bearer(alice))));
    closers.push(...open.map((s) => () => s.close()));

    const third = await fetch(`${progressUrl(service.url, id)}/stream`, { headers: bearer(alice) });
    expect(third.headers.get('retry-after')).toMatch(/^\d+$/);
    await expectError(third, 429, 'too_many_connections');
    const ws = new WebSocket(`${service.url.replace('http', 'ws')}/api/ai/ws`, { headers: bearer(alice) });
    ws.on('error', () => {});
    const [, response] = (await withTimeout(once(ws, 'unexpected-response'), 5_000, 'the refusal')) as [unknown, { statusCode: number; headers: Record<string, string> }];
    expect(response.statusCode).toBe(429);
    expect(response.headers['retry-after']).toMatch(/^\d+$/);

    const bob = await mintToken({ sub: 'bob', tenant: 'acme' });
    const other = await RawStream.open(`${progressUrl(service.url, id)}/stream`, bearer(bob));
    closers.push(() => other.close());
    expect(other.response.status).toBe(200);

    // A place comes back when a stream ends.
    open[0]!.close();
    await until(async () => {
      const again = await fetch(`${progressUrl(service.url, id)}/stream`, { headers: bearer(alice) });
      await again.body?.cancel();
      return again.status === 200;
    }, 5_000, 'a place to free up');
  });
});
