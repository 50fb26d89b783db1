import { EventSource } from 'eventsource';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';
import { REDIS_URL, createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { ServerProcess } from '../support/server-process.js';
import { until } from '../support/wait.js';

let database: TestDatabase;
const servers: ServerProcess[] = [];
const sources: EventSource[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
});
afterEach(async () => {
  for (const source of sources.splice(0)) source.close();
  for (const server of servers.splice(0)) if (server.running) await server.stop('SIGKILL');
});
afterAll(async () => {
  await database?.drop();
});

async function start(env: Record<string, string>): Promise<ServerProcess> {
  const server = await ServerProcess.start({ REDIS_URL, DATABASE_URL: database.url, ...env });
  servers.push(server);
  return server;
}

async function publish(server: ServerProcess, bookId: string, update: object): Promise<BookProgress> {
  const res = await fetch(`${server.url}/api/ai/progress/${bookId}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(update),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: BookProgress }).data;
}

/**
 * A watcher that follows whichever server `target()` names: EventSource reconnects to the same
 * URL by itself, so a redirecting fetch sends each (re)connect to the current server.
 */
function follower(target: () => string, bookId: string) {
  const versions: number[] = [];
  const source = new EventSource(`http://follow.invalid/api/ai/progress/${bookId}/stream`, {
    fetch: (input, init) => fetch(String(input).replace('http://follow.invalid', target()), init),
  });
  source.addEventListener('progress', (event) => versions.push((JSON.parse(event.data) as BookProgress).version));
  sources.push(source);
  return { versions, source };
}

describe('server process faults', () => {
  it('SIGKILL while 100 clients watch: they reconnect to a second instance and converge, never going back', async () => {
    const prefix = uniquePrefix();
    const first = await start({ REDIS_KEY_PREFIX: prefix });
    let current = first.url;
    const bookId = `kill-${Date.now()}`;
    for (let i = 0; i < 5; i++) await publish(first, bookId, { status: 'GENERATING', message: `before ${i}` });

    const clients = Array.from({ length: 100 }, () => follower(() => current, bookId));
    await until(() => clients.every((c) => c.versions.at(-1) === 5), 15_000, 'every client on version 5');

    expect(await first.stop('SIGKILL')).toBeNull();
    const second = await start({ REDIS_KEY_PREFIX: prefix });
    current = second.url;
    for (let i = 0; i < 5; i++) await publish(second, bookId, { message: `after ${i}` });
    const final = await publish(second, bookId, { status: 'COMPLETE' });

    await until(() => clients.every((c) => c.versions.at(-1) === final.version), 30_000, `every client on the final version ${final.version}`);
    for (const { versions } of clients) {
      expect(versions).toEqual([...new Set(versions)].sort((a, b) => a - b));
    }
  });

  it('SIGTERM: stops accepting, sends watchers a retry hint and closes them, takes a last snapshot, exits 0', async () => {
    const server = await start({ REDIS_KEY_PREFIX: uniquePrefix(), SNAPSHOT_INTERVAL_MS: '3600000' });
    const bookId = `term-${Date.now()}`;
    const last = await publish(server, bookId, { status: 'GENERATING', message: 'in flight' });

    const res = await fetch(`${server.url}/api/ai/progress/${bookId}/stream`);
    const reader = res.body!.getReader();
    let text = '';
    const streamEnded = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += new TextDecoder().decode(value);
      }
    })();
    await until(() => text.includes(`id: ${last.version}`), 5_000, 'the current state on the stream');

    expect(await server.stop('SIGTERM', 10_000)).toBe(0);
    await streamEnded;
    expect(text.trimEnd().endsWith('retry: 3000')).toBe(true);
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();

    const sql = postgres(database.url, { max: 1 });
    try {
      const rows = await sql`SELECT version, status FROM books WHERE id = ${bookId}`;
      expect(rows).toEqual([{ version: last.version, status: 'GENERATING' }]);
    } finally {
      await sql.end();
    }
  });
});
