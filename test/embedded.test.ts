import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Watch } from './support/events.js';
import { ServerProcess } from './support/server-process.js';

/** `npm start` on a machine with neither Redis nor Postgres: what the quick start promises. */
let server: ServerProcess;

beforeAll(async () => {
  server = await ServerProcess.start({ LOG_LEVEL: 'info' });
});
afterAll(async () => {
  await server?.stop('SIGTERM');
});

describe('the embedded default (no REDIS_URL, no DATABASE_URL)', () => {
  it('says so at start, and serves progress, streams, books and the dashboard', async () => {
    expect(server.output).toContain('backends: in-memory broker, pglite database');
    const watch = new Watch(`${server.url}/api/ai/progress/embedded/stream`);
    await watch.opened();
    const posted = await fetch(`${server.url}/api/ai/progress/embedded`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ status: 'GENERATING', message: 'no Redis here' }),
    });
    expect(posted.status).toBe(200);
    await watch.version(1);
    watch.close();
    const polled = await fetch(`${server.url}/api/ai/progress/embedded`);
    expect(polled.headers.get('x-progress-source')).toBe('memory');

    const book = await fetch(`${server.url}/api/books`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Embedded', chapters: 1, sectionsPerChapter: 1 }),
    });
    expect(book.status).toBe(201);
    const page = await fetch(`${server.url}/`);
    expect(await page.text()).toContain('<h1>Books</h1>');
  });
});
