import { request } from 'node:http';
import type { ClientRequest } from 'node:http';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { ServerProcess } from '../support/server-process.js';
import { until } from '../support/wait.js';

const CLIENTS = 2_000;
const BOOKS = 20;

let database: TestDatabase;
let server: ServerProcess;
const prefix = uniquePrefix();
const redis = new Redis(REDIS_URL);

beforeAll(async () => {
  database = await createTestDatabase();
  server = await ServerProcess.start({ REDIS_URL, REDIS_KEY_PREFIX: prefix, DATABASE_URL: database.url });
});
afterAll(async () => {
  await server?.stop('SIGKILL');
  await database?.drop();
  await redis.quit();
});

/** A bare SSE client: remembers the highest event id it has seen. */
class RawClient {
  lastId = 0;
  #request: ClientRequest | null = null;

  constructor(readonly bookId: string) {}

  connect(): void {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (this.lastId > 0) headers['last-event-id'] = String(this.lastId);
    const req = request(`${server.url}/api/ai/progress/${this.bookId}/stream`, { agent: false, headers }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        for (const match of chunk.matchAll(/^id: (\d+)$/gm)) this.lastId = Math.max(this.lastId, Number(match[1]));
      });
      res.on('error', () => {});
    });
    req.on('error', () => {});
    req.end();
    this.#request = req;
  }

  drop(): void {
    this.#request?.destroy();
    this.#request = null;
  }
}

async function publish(bookId: string, message: string): Promise<number> {
  const res = await fetch(`${server.url}/api/ai/progress/${bookId}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ status: 'GENERATING', message }),
  });
  return ((await res.json()) as { data: { version: number } }).data.version;
}

async function usage() {
  const channels = (await redis.pubsub('CHANNELS', `${prefix}updates:*`)) as string[];
  return {
    streams: await server.metric('booksai_sse_streams'),
    topics: await server.metric('booksai_hub_topics'),
    watchers: await server.metric('booksai_hub_watchers'),
    channels: channels.length,
  };
}

describe('reconnect storm', () => {
  it(`${CLIENTS} clients dropping and reconnecting at once all resume, and leave nothing behind`, async () => {
    const books = Array.from({ length: BOOKS }, (_, i) => `storm-${i}`);
    for (const id of books) await publish(id, 'first');
    const handlesBefore = await server.metric('nodejs_active_handles_total');

    const clients = Array.from({ length: CLIENTS }, (_, i) => new RawClient(books[i % BOOKS] as string));
    for (const client of clients) client.connect();
    await until(() => clients.every((c) => c.lastId === 1), 60_000, 'every client on version 1');
    expect(await usage()).toEqual({ streams: CLIENTS, topics: BOOKS, watchers: CLIENTS, channels: BOOKS });

    for (const client of clients) client.drop();
    for (const id of books) await publish(id, 'while they were away');
    for (const client of clients) client.connect();
    await until(() => clients.every((c) => c.lastId === 2), 60_000, 'every client resumed on version 2');
    for (const id of books) await publish(id, 'after the storm');
    await until(() => clients.every((c) => c.lastId === 3), 60_000, 'every client on version 3');

    for (const client of clients) client.drop();
    await until(async () => JSON.stringify(await usage()) === JSON.stringify({ streams: 0, topics: 0, watchers: 0, channels: 0 }), 30_000, 'nothing left watched');
    await until(async () => (await server.metric('nodejs_active_handles_total')) <= handlesBefore, 30_000, 'no socket or timer left behind');
  }, 180_000);
});
