import { request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { Watch } from '../support/events.js';
import { ServerProcess } from '../support/server-process.js';
import { pace, until, withTimeout } from '../support/wait.js';

const DURATION_MS = 60_000;
const UPDATES_PER_SECOND = 200;
const MESSAGE = 'x'.repeat(1_900);
const MiB = 1024 * 1024;

let database: TestDatabase;
let server: ServerProcess;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await ServerProcess.start({ REDIS_URL, REDIS_KEY_PREFIX: uniquePrefix(), DATABASE_URL: database.url });
});
afterAll(async () => {
  await server?.stop('SIGKILL');
  await database?.drop();
});

describe('a consumer that stops reading for a minute', () => {
  it('costs the server bounded memory, delays nobody, and gets the latest state when it reads again', async () => {
    const bookId = `slow-${Date.now()}`;
    const publish = async (message: string) => {
      const res = await fetch(`${server.url}/api/ai/progress/${bookId}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ status: 'GENERATING', message }),
      });
      return ((await res.json()) as { data: { version: number } }).data.version;
    };
    await publish('start');

    // The slow client: reads the first event, then stops reading (its socket fills up).
    let slowBytes = 0;
    let slowText = '';
    const slow = await new Promise<IncomingMessage>((resolve) => {
      const req = request(`${server.url}/api/ai/progress/${bookId}/stream`, { agent: false }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          slowBytes += Buffer.byteLength(chunk);
          slowText = (slowText + chunk).slice(-20_000);
        });
        res.once('data', () => {
          res.pause();
          resolve(res);
        });
      });
      req.end();
    });
    const fast = new Watch(`${server.url}/api/ai/progress/${bookId}/stream`);
    await fast.version(1);

    let published = 1;
    let maxBuffered = 0;
    let publishedBytes = 0;
    const end = Date.now() + DURATION_MS;
    while (Date.now() < end) {
      const second = Date.now() + 1_000;
      await Promise.all(Array.from({ length: UPDATES_PER_SECOND }, (_, i) => publish(`${i} ${MESSAGE}`)));
      published += UPDATES_PER_SECOND;
      publishedBytes += UPDATES_PER_SECOND * (MESSAGE.length + 300);
      maxBuffered = Math.max(maxBuffered, await server.metric('booksai_sse_buffered_bytes'));
      if (Date.now() < second) await pace(second - Date.now());
    }

    // The fast client kept up: it is on the last version right away, in order.
    await fast.version(published, 5_000);
    const versions = fast.states.map((s) => s.version);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    // A server that buffered every update for the slow client would hold all of publishedBytes;
    // this one holds at most a socket's high-water mark and one pending state.
    expect(publishedBytes).toBeGreaterThan(20 * MiB);
    expect(maxBuffered).toBeGreaterThan(0);
    expect(maxBuffered).toBeLessThan(64 * 1024);

    slow.resume();
    await until(() => slowText.includes(`id: ${published}\n`), 15_000, 'the slow client to get the latest version');
    expect(slowBytes).toBeLessThan(publishedBytes / 4);
    slow.destroy();
    fast.close();
    await withTimeout(until(async () => (await server.metric('booksai_sse_streams')) === 0, 5_000, 'both streams closed'), 6_000, 'cleanup');
  }, 120_000);
});
