import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { RawStream, bookId, expectError, progressEvents, progressUrl } from '../server/http.js';
import { Watch } from '../support/events.js';
import { startServer } from '../support/service.js';
import { TEST_SECRET, bearer, mintToken } from '../support/tokens.js';
import { until, withTimeout } from '../support/wait.js';

const PUBLISH_TOKEN = 'the-service-credential-of-the-orchestrator';
const READ_WRITE = 'progress:read progress:write books:write';

let service: Service;
let alice: string; // tenant acme
let bob: string; // tenant globex
let admin: string;
let expiredAlice: string;
const closers: Array<() => void> = [];

beforeAll(async () => {
  service = await startServer({ AUTH_JWT_SECRET: TEST_SECRET, PUBLISH_TOKEN });
  alice = await mintToken({ sub: 'alice', tenant: 'acme', scope: READ_WRITE });
  bob = await mintToken({ sub: 'bob', tenant: 'globex', scope: READ_WRITE });
  admin = await mintToken({ sub: 'operator', tenant: 'ops', scope: 'admin' });
  expiredAlice = await mintToken({ sub: 'alice', tenant: 'acme', scope: READ_WRITE }, { ttlSeconds: -10 });
});
afterEach(() => {
  for (const close of closers.splice(0)) close();
});
afterAll(async () => {
  await service.close();
});

const json = { 'content-type': 'application/json' };
const publish = (token: string, id: string, body: object) =>
  fetch(progressUrl(service.url, id), { method: 'POST', headers: bearer(token, json), body: JSON.stringify(body) });
async function published(token: string, id: string, body: object): Promise<BookProgress> {
  const res = await publish(token, id, body);
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { data: BookProgress }).data;
}
const poll = (token: string, id: string, headers: Record<string, string> = {}) => fetch(progressUrl(service.url, id), { headers: bearer(token, headers) });

/** A WebSocket with `token` in its Authorization header, recording what arrives. */
async function connect(token: string) {
  const ws = new WebSocket(`${service.url.replace('http', 'ws')}/api/ai/ws`, { headers: { authorization: `Bearer ${token}` } });
  closers.push(() => ws.terminate());
  const progress: BookProgress[] = [];
  const errors: Array<{ bookId?: string; code: string }> = [];
  ws.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { type: string; data?: BookProgress; bookId?: string; error?: { code: string } };
    if (message.type === 'progress') progress.push(message.data!);
    if (message.type === 'error') errors.push({ bookId: message.bookId, code: message.error!.code });
  });
  await withTimeout(once(ws, 'open'), 5_000, 'the WebSocket to open');
  return { ws, progress, errors, send: (message: unknown) => ws.send(JSON.stringify(message)) };
}

describe('ownership', () => {
  it('a book belongs to the tenant of its first state, and the state says so', async () => {
    const id = bookId('owned');
    expect((await published(alice, id, { message: 'mine' })).tenant).toBe('acme');
    const { data } = (await (await poll(alice, id)).json()) as { data: BookProgress };
    expect(data.tenant).toBe('acme');
  });

  it("another tenant's write is a 404, and changes nothing: no version, no state", async () => {
    const id = bookId('guarded');
    const first = await published(alice, id, { message: 'by alice', totalChapters: 3 });
    await expectError(await publish(bob, id, { message: 'by bob', status: 'ERROR' }), 404, 'not_found');
    const { data } = (await (await poll(alice, id)).json()) as { data: BookProgress };
    expect(data).toEqual(first);
  });

  it('two tenants racing for a new book: one wins, the other gets 404', async () => {
    const id = bookId('race');
    const answers = await Promise.all([publish(alice, id, { message: 'a' }), publish(bob, id, { message: 'b' })]);
    expect(answers.map((r) => r.status).sort()).toEqual([200, 404]);
    const winner = answers[0]!.status === 200 ? 'acme' : 'globex';
    const { data } = (await (await poll(admin, id)).json()) as { data: BookProgress };
    expect(data.tenant).toBe(winner);
    expect(data.version).toBe(1);
  });

  it('the tenant defaults to sub', async () => {
    const carol = await mintToken({ sub: 'carol', scope: READ_WRITE });
    const id = bookId('carol');
    expect((await published(carol, id, { message: 'x' })).tenant).toBe('carol');
  });

  it('the tenant outlives a finished run: a new run of the book stays the tenant\'s', async () => {
    const id = bookId('reruns');
    await published(alice, id, { status: 'COMPLETE' });
    expect((await published(alice, id, { status: 'GENERATING', message: 'again' })).tenant).toBe('acme');
    await expectError(await publish(bob, id, { status: 'GENERATING' }), 404, 'not_found');
  });
});

describe('poll', () => {
  it("another tenant's book is 404, the same answer as a missing book", async () => {
    const id = bookId('hidden');
    await published(alice, id, { message: 'secret chapter titles' });
    const foreign = await expectError(await poll(bob, id), 404, 'not_found');
    const missing = await expectError(await poll(bob, 'no-such-book'), 404, 'not_found');
    expect(foreign.error.message.replace(id, '<id>')).toBe(missing.error.message.replace('no-such-book', '<id>'));
  });

  it('stays 404 once the book is followed and answered from memory, with its ETag too', async () => {
    const id = bookId('followed');
    const state = await published(alice, id, { message: 'x' });
    // Alice's polls make the server follow the book: the next polls take the fast path.
    expect((await poll(alice, id)).status).toBe(200);
    await until(() => service.hub.polled(id) !== null, 5_000, 'the book to be followed');
    expect((await poll(alice, id)).headers.get('x-progress-source')).toBe('redis');
    // Bob's token is verified (and cached) on his first request; his later ones hit the fast path.
    for (let i = 0; i < 3; i++) {
      await expectError(await poll(bob, id), 404, 'not_found');
      await expectError(await poll(bob, id, { 'if-none-match': `"${state.version}"` }), 404, 'not_found');
      await expectError(await fetch(`${progressUrl(service.url, id)}?access_token=${bob}`), 404, 'not_found');
    }
    const notModified = await poll(alice, id, { 'if-none-match': `"${state.version}"` });
    expect(notModified.status).toBe(304);
  });

  it('an expired token is 401 on the fast path too', async () => {
    const id = bookId('expired');
    await published(alice, id, { message: 'x' });
    expect((await poll(alice, id)).status).toBe(200);
    await until(() => service.hub.polled(id) !== null, 5_000, 'the book to be followed');
    await expectError(await poll(expiredAlice, id), 401, 'invalid_token');
    await expectError(await fetch(progressUrl(service.url, id)), 401, 'unauthorized');
  });

  it('admin reads across tenants', async () => {
    const id = bookId('admin');
    await published(alice, id, { message: 'x' });
    expect((await poll(admin, id)).status).toBe(200);
  });
});

describe('streams', () => {
  it("per-book SSE: another tenant's book is 404, as a missing one; no stream is left open", async () => {
    const id = bookId('sse');
    await published(alice, id, { message: 'x' });
    await expectError(await fetch(`${progressUrl(service.url, id)}/stream`, { headers: bearer(bob) }), 404, 'not_found');
    await expectError(await fetch(`${progressUrl(service.url, 'no-such-book')}/stream`, { headers: bearer(bob) }), 404, 'not_found');
    await expectError(await fetch(`${progressUrl(service.url, id)}/stream`, { headers: bearer(expiredAlice) }), 401, 'invalid_token');
    expect(service.streams.size).toBe(0);
    const own = await RawStream.open(`${progressUrl(service.url, id)}/stream`, bearer(alice));
    closers.push(() => own.close());
    await own.until((text) => progressEvents(text).length === 1);
  });

  it('multiplexed SSE: a list naming one foreign book is refused whole and carries nothing', async () => {
    const [mine, theirs] = [bookId('mx'), bookId('mx')];
    await published(bob, mine, { message: 'bob' });
    await published(alice, theirs, { message: 'alice' });
    const res = await fetch(`${service.url}/api/ai/stream?books=${mine},${theirs}`, { headers: bearer(bob) });
    await expectError(res, 404, 'not_found');
    expect(service.streams.size).toBe(0);
    const own = await RawStream.open(`${service.url}/api/ai/stream?books=${mine}`, bearer(bob));
    closers.push(() => own.close());
    await own.until((text) => progressEvents(text).length === 1);
  });

  it("every-book SSE: only the caller's tenant's books, first and live", async () => {
    const [mine, theirs] = [bookId('all'), bookId('all')];
    const created = await fetch(`${service.url}/api/books`, { method: 'POST', headers: bearer(alice, json), body: JSON.stringify({ title: "Alice's", chapters: 1, sectionsPerChapter: 1 }) });
    expect(created.status).toBe(201);
    const aliceBook = ((await created.json()) as { data: { bookId: string } }).data.bookId;
    await published(bob, mine, { message: 'bob first' });

    const watch = new Watch(`${service.url}/api/ai/stream`, { fetch: (url, init) => fetch(url, { ...init, headers: { ...init?.headers, ...bearer(bob) } }) });
    closers.push(() => watch.close());
    await watch.opened();
    await published(alice, theirs, { message: 'alice live' });
    await published(bob, mine, { message: 'bob live' });
    // Published after Alice's update on the same channel: had hers been delivered, it came first.
    await watch.next((s) => s.message === 'bob live');
    expect(watch.states.map((s) => s.tenant)).toEqual(watch.states.map(() => 'globex'));
    expect(watch.states.some((s) => s.bookId === aliceBook || s.bookId === theirs)).toBe(false);
  });
});

describe('WebSocket', () => {
  it("refuses a foreign book with an error for it and none of its states; the rest works", async () => {
    const [mine, theirs] = [bookId('ws'), bookId('ws')];
    await published(bob, mine, { message: 'bob' });
    await published(alice, theirs, { message: 'alice' });
    const client = await connect(bob);
    client.send({ type: 'subscribe', books: [mine, theirs, 'no-such-book'] });
    await until(() => client.errors.length === 2 && client.progress.length === 1, 5_000, 'an error per hidden book and the own state');
    expect(client.errors).toEqual([
      { bookId: theirs, code: 'not_found' },
      { bookId: 'no-such-book', code: 'not_found' },
    ]);
    await published(alice, theirs, { message: 'alice live' });
    await published(bob, mine, { message: 'bob live' });
    await until(() => client.progress.some((s) => s.message === 'bob live'), 5_000, "bob's live update");
    expect(client.progress.every((s) => s.bookId === mine)).toBe(true);
  });

  it('refuses the upgrade without a token (401), with an expired one (401), and without the read scope (403)', async () => {
    const url = `${service.url.replace('http', 'ws')}/api/ai/ws`;
    const status = async (headers: Record<string, string>) => {
      const ws = new WebSocket(url, { headers });
      ws.on('error', () => {}); // the refusal also ends the handshake with an error
      const [, response] = (await withTimeout(once(ws, 'unexpected-response'), 5_000, 'the refusal')) as [unknown, { statusCode: number; headers: Record<string, string> }];
      return response;
    };
    expect((await status({})).statusCode).toBe(401);
    expect((await status({})).headers['www-authenticate']).toBe('Bearer');
    expect((await status(bearer(expiredAlice))).statusCode).toBe(401);
    expect((await status(bearer(await mintToken({ sub: 'w', scope: 'progress:write' })))).statusCode).toBe(403);
    expect((await status({ cookie: 'booksai_token=garbage' })).statusCode).toBe(401);
  });

  it('takes the token from the cookie or ?access_token= as well', async () => {
    const id = bookId('ws-cookie');
    await published(alice, id, { message: 'x' });
    const base = `${service.url.replace('http', 'ws')}/api/ai/ws`;
    for (const open of [() => new WebSocket(base, { headers: { cookie: `booksai_token=${alice}` } }), () => new WebSocket(`${base}?access_token=${alice}`)]) {
      const ws = open();
      closers.push(() => ws.terminate());
      await withTimeout(once(ws, 'open'), 5_000, 'the WebSocket to open');
      const message = withTimeout(once(ws, 'message'), 5_000, 'the state');
      ws.send(JSON.stringify({ type: 'subscribe', books: [id] }));
      expect(JSON.parse(String((await message)[0])).data.bookId).toBe(id);
    }
  });
});

describe('books API', () => {
  it("lists only the caller's tenant's books, and another tenant's book is 404 with its chapters", async () => {
    const created = await fetch(`${service.url}/api/books`, { method: 'POST', headers: bearer(alice, json), body: JSON.stringify({ title: 'Private', chapters: 1, sectionsPerChapter: 1 }) });
    expect(created.status).toBe(201);
    const { bookId: id } = ((await created.json()) as { data: { bookId: string } }).data;
    await service.orchestrator.settled(id);

    const list = async (token: string) => ((await (await fetch(`${service.url}/api/books`, { headers: bearer(token) })).json()) as { data: Array<{ bookId: string; owner: string }> }).data;
    const mine = await list(alice);
    expect(mine.find((b) => b.bookId === id)?.owner).toBe('alice');
    expect((await list(bob)).some((b) => b.bookId === id)).toBe(false);
    expect((await list(admin)).some((b) => b.bookId === id)).toBe(true);

    expect((await fetch(`${service.url}/api/books/${id}`, { headers: bearer(alice) })).status).toBe(200);
    await expectError(await fetch(`${service.url}/api/books/${id}`, { headers: bearer(bob) }), 404, 'not_found');
    await expectError(await fetch(`${service.url}/api/books/${id}`, { headers: bearer(expiredAlice) }), 401, 'invalid_token');
    expect((await fetch(`${service.url}/api/books/${id}`, { headers: bearer(admin) })).status).toBe(200);
    // Its progress is the tenant's too.
    await expectError(await poll(bob, id), 404, 'not_found');
  });
});

describe('cancel and retry', () => {
  it("need books:write on the book's own tenant: another tenant's is 404, no token 401, an expired one 401", async () => {
    const created = await fetch(`${service.url}/api/books`, { method: 'POST', headers: bearer(alice, json), body: JSON.stringify({ title: 'Guarded', chapters: 1, sectionsPerChapter: 1 }) });
    expect(created.status).toBe(201);
    const { bookId: id } = ((await created.json()) as { data: { bookId: string } }).data;
    const reader = await mintToken({ sub: 'alice', tenant: 'acme' });
    for (const action of ['cancel', 'retry']) {
      const url = `${service.url}/api/books/${id}/${action}`;
      await expectError(await fetch(url, { method: 'POST', headers: bearer(bob) }), 404, 'not_found');
      await expectError(await fetch(url, { method: 'POST' }), 401, 'unauthorized');
      await expectError(await fetch(url, { method: 'POST', headers: bearer(expiredAlice) }), 401, 'invalid_token');
      await expectError(await fetch(url, { method: 'POST', headers: bearer(reader) }), 403, 'insufficient_scope');
    }
    // None of that touched it: the book runs to COMPLETE, and its own tenant may cancel it no more (409).
    await until(async () => ((await (await poll(alice, id)).json()) as { data: BookProgress }).data.status === 'COMPLETE', 15_000, 'the book to complete');
    await expectError(await fetch(`${service.url}/api/books/${id}/cancel`, { method: 'POST', headers: bearer(alice) }), 409, 'invalid_state');
  });
});

describe('the books claim', () => {
  it('limits reads to the listed books of the tenant, on every path', async () => {
    const [allowed, other] = [bookId('claim'), bookId('claim')];
    await published(alice, allowed, { message: 'allowed' });
    await published(alice, other, { message: 'other' });
    const narrow = await mintToken({ sub: 'alice', tenant: 'acme', books: [allowed] });

    expect((await poll(narrow, allowed)).status).toBe(200);
    await expectError(await poll(narrow, other), 404, 'not_found');
    await expectError(await fetch(`${progressUrl(service.url, other)}/stream`, { headers: bearer(narrow) }), 404, 'not_found');
    await expectError(await fetch(`${service.url}/api/ai/stream?books=${allowed},${other}`, { headers: bearer(narrow) }), 404, 'not_found');

    const watch = new Watch(`${service.url}/api/ai/stream`, { fetch: (url, init) => fetch(url, { ...init, headers: { ...init?.headers, ...bearer(narrow) } }) });
    closers.push(() => watch.close());
    await watch.opened();
    await published(alice, other, { message: 'other live' });
    await published(alice, allowed, { message: 'allowed live' });
    await watch.next((s) => s.message === 'allowed live');
    expect(watch.states.every((s) => s.bookId === allowed)).toBe(true);

    const client = await connect(narrow);
    client.send({ type: 'subscribe', books: [allowed, other] });
    await until(() => client.errors.length === 1 && client.progress.length === 1, 5_000, 'one error and one state');
    expect(client.errors[0]).toEqual({ bookId: other, code: 'not_found' });
  });
});

describe('PUBLISH_TOKEN, the service credential', () => {
  it('publishes for the tenant named in X-Tenant, and only for it', async () => {
    const id = bookId('service');
    const headers = (tenant?: string) => ({ ...json, authorization: `Bearer ${PUBLISH_TOKEN}`, ...(tenant ? { 'x-tenant': tenant } : {}) });
    const first = await fetch(progressUrl(service.url, id), { method: 'POST', headers: headers('acme'), body: '{"message":"from the orchestrator"}' });
    expect(first.status).toBe(200);
    expect((await poll(alice, id)).status).toBe(200);
    await expectError(await poll(bob, id), 404, 'not_found');
    await expectError(await fetch(progressUrl(service.url, id), { method: 'POST', headers: headers('globex'), body: '{"message":"x"}' }), 404, 'not_found');
    await expectError(await fetch(progressUrl(service.url, id), { method: 'POST', headers: headers(), body: '{"message":"x"}' }), 400, 'tenant_required');
    // It writes; it does not read.
    await expectError(await fetch(progressUrl(service.url, id), { headers: headers('acme') }), 403, 'insufficient_scope');
  });
});
