import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { startServer } from '../support/service.js';
import { until, withTimeout } from '../support/wait.js';
import { bookId } from './http.js';

let service: Service;
const sockets: WebSocket[] = [];

beforeAll(async () => {
  service = await startServer({ MAX_BOOKS_PER_STREAM: '3', MAX_SSE_CONNECTIONS: '5' });
});
afterEach(() => {
  for (const ws of sockets.splice(0)) ws.terminate();
});
afterAll(async () => {
  await service.close();
});

/** A real WebSocket client recording what the server sends. */
async function connect() {
  const ws = new WebSocket(`${service.url.replace('http', 'ws')}/api/ai/ws`);
  sockets.push(ws);
  const progress: BookProgress[] = [];
  const errors: Array<{ code: string; message: string }> = [];
  ws.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { type: string; data?: BookProgress; error?: { code: string; message: string } };
    if (message.type === 'progress') progress.push(message.data!);
    if (message.type === 'error') errors.push(message.error!);
  });
  await withTimeout(once(ws, 'open'), 5_000, 'the WebSocket to open');
  return { ws, progress, errors, send: (message: unknown) => ws.send(typeof message === 'string' ? message : JSON.stringify(message)) };
}

describe('WebSocket /api/ai/ws', () => {
  it('sends the current states of subscribed books, then every update, versions only going up', async () => {
    const [a, b] = [bookId('ws'), bookId('ws')];
    await service.tracker.updateProgress(a, { message: 'a1' });
    const client = await connect();
    client.send({ type: 'subscribe', books: [a, b] });
    await until(() => client.progress.length === 1, 5_000, 'the current state of a');
    await service.tracker.updateProgress(b, { message: 'b1' });
    for (let i = 0; i < 20; i++) await service.tracker.updateProgress(a, { message: `a${i + 2}` });
    await until(() => client.progress.some((p) => p.bookId === a && p.version === 21) && client.progress.some((p) => p.bookId === b), 5_000, 'all updates');
    for (const id of [a, b]) {
      const versions = client.progress.filter((p) => p.bookId === id).map((p) => p.version);
      expect(versions).toEqual([...new Set(versions)].sort((x, y) => x - y));
    }
  });

  it('resumes from the versions the client has, and stops a book on unsubscribe', async () => {
    const id = bookId('ws-resume');
    for (let i = 0; i < 3; i++) await service.tracker.updateProgress(id, { message: `m${i}` });
    const client = await connect();
    client.send({ type: 'subscribe', books: [id], versions: { [id]: 3 } });
    await until(() => service.hub.stats().watchers >= 1, 5_000, 'the subscription');
    await service.tracker.updateProgress(id, { message: 'new' });
    await until(() => client.progress.length === 1, 5_000, 'the new state');
    expect(client.progress[0]?.version).toBe(4);

    client.send({ type: 'unsubscribe', books: [id] });
    await until(() => service.hub.stats().watchers === 0, 5_000, 'the unsubscription');
    await service.tracker.updateProgress(id, { message: 'not for us' });
    client.send({ type: 'subscribe', books: [id], versions: { [id]: 5 } }); // a round trip to flush
    await until(() => service.hub.stats().watchers === 1, 5_000, 'the resubscription');
    expect(client.progress.map((p) => p.version)).toEqual([4]);
  });

  it('answers bad messages with an error message and stays open', async () => {
    const client = await connect();
    client.send('not json');
    client.send({ type: 'subscribe', books: ['a/b'] });
    client.send({ type: 'dance' });
    client.send({ type: 'subscribe', books: ['b1', 'b2', 'b3', 'b4'] });
    await until(() => client.errors.length === 4, 5_000, 'four error messages');
    expect(client.errors.map((e) => e.code)).toEqual(['invalid_json', 'invalid_message', 'invalid_message', 'too_many_books']);
    expect(client.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('leaves nothing behind when clients go, and refuses past the connection cap with 503', async () => {
    const clients = await Promise.all([1, 2, 3, 4, 5].map(() => connect()));
    for (const client of clients) client.send({ type: 'subscribe', books: ['shared-ws-book'] });
    await until(() => service.hub.stats().watchers === 5, 5_000, 'five watchers');
    const refused = new WebSocket(`${service.url.replace('http', 'ws')}/api/ai/ws`);
    refused.on('error', () => {}); // the refusal ends the handshake: expected here
    const [, response] = (await withTimeout(once(refused, 'unexpected-response'), 5_000, 'the refusal')) as [unknown, { statusCode: number }];
    expect(response.statusCode).toBe(503);
    refused.terminate();
    for (const client of clients) client.ws.close();
    await until(() => service.hub.stats().watchers === 0 && service.hub.stats().topics === 0, 5_000, 'nothing left watched');
  });

  it('keeps a client that stops reading to the newest state per book, and delivers it when it reads again', async () => {
    const id = bookId('ws-slow');
    const client = await connect();
    client.send({ type: 'subscribe', books: [id] });
    await until(() => service.hub.stats().watchers >= 1, 5_000, 'the subscription');
    client.ws.pause();
    const message = 'x'.repeat(1_900);
    let last = 0;
    for (let i = 0; i < 6_000; i++) last = (await service.tracker.updateProgress(id, { message: `${i} ${message}` })).version;
    client.ws.resume();
    await until(() => client.progress.at(-1)?.version === last, 15_000, 'the newest state after resuming');
    // 12 MB published; kernel socket buffers hold a few MB, the server only the newest state.
    expect(client.progress.length).toBeLessThan(6_000 / 2);
    const versions = client.progress.map((p) => p.version);
    expect(versions).toEqual([...versions].sort((x, y) => x - y));
  });

  it('refuses an upgrade on any other path with 404', async () => {
    const wrong = new WebSocket(`${service.url.replace('http', 'ws')}/api/ai/nope`);
    wrong.on('error', () => {}); // the refusal ends the handshake: expected here
    const [, response] = (await withTimeout(once(wrong, 'unexpected-response'), 5_000, 'the refusal')) as [unknown, { statusCode: number }];
    expect(response.statusCode).toBe(404);
    wrong.terminate();
  });
});
