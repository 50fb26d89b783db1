import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { REDIS_URL, createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { Watch } from '../support/events.js';
import { ServerProcess } from '../support/server-process.js';
import { startTestService } from '../support/service.js';
import { tryWebSocket } from '../support/upgrade.js';
import { until } from '../support/wait.js';

const STALL_LOOP = fileURLToPath(new URL('../support/stall-loop.mjs', import.meta.url));

/**
 * A real server process whose event loop is stalled from outside (a preload burns its CPU on
 * SIGUSR2): new work is refused 503 overloaded at once, what was admitted goes on. A second
 * server on the same Redis publishes meanwhile, as another instance of a fleet would.
 */
let database: TestDatabase;
let peer: Service;
let server: ServerProcess;

beforeAll(async () => {
  database = await createTestDatabase();
  const env = { REDIS_URL, REDIS_KEY_PREFIX: uniquePrefix(), DATABASE_URL: database.url, MAX_GENERATIONS: '0' };
  peer = await startTestService(env);
  // The gate at its default (test servers run without it otherwise).
  server = await ServerProcess.start({ ...env, OVERLOAD_LOOP_DELAY_MS: '200', NODE_OPTIONS: `--import ${STALL_LOOP}` });
}, 60_000);

afterAll(async () => {
  server?.signal('SIGWINCH');
  await server?.stop();
  await peer?.close();
  await database?.drop();
});

async function publish(url: string, bookId: string, body: Record<string, unknown>): Promise<Response> {
  return fetch(`${url}/api/ai/progress/${bookId}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
}

async function readyz(): Promise<{ status: number; body: { data?: { overloaded: boolean }; error?: { code: string; details?: { overloaded: boolean } } } }> {
  const res = await fetch(`${server.url}/readyz`);
  return { status: res.status, body: (await res.json()) as never };
}

/** A request answered, and how long it took: a refusal must come back at once, not as a timeout. */
async function timed(request: () => Promise<Response>): Promise<{ res: Response; ms: number }> {
  const started = performance.now();
  const res = await request();
  return { res, ms: performance.now() - started };
}

async function expectOverloaded(res: Response, ms: number): Promise<void> {
  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
  expect(((await res.json()) as { error: { code: string } }).error.code).toBe('overloaded');
  // The loop is free 100 ms in every 400: the refusal comes in the next gap or two.
  expect(ms).toBeLessThan(2_000);
}

describe('admission control under a stalled event loop', () => {
  it('refuses new streams, WebSockets and publishes with 503 overloaded + Retry-After; open streams keep delivering; /healthz stays 200; it recovers', async () => {
    const bookId = `overload-${Date.now()}`;
    expect((await publish(peer.url, bookId, { status: 'GENERATING', generationStep: 'OUTLINE', message: 'v1' })).status).toBe(200);
    const admitted = new Watch(`${server.url}/api/ai/progress/${bookId}/stream`);
    try {
      await admitted.version(1, 10_000);
      expect((await readyz()).status).toBe(200);

      server.signal('SIGUSR2');
      await until(async () => (await readyz()).body.error?.details?.overloaded === true, 5_000, '/readyz to say overloaded');
      const ready = await readyz();
      expect(ready.status).toBe(503);
      expect(ready.body.error?.code).toBe('not_ready');
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);

      const stream = await timed(() => fetch(`${server.url}/api/ai/progress/${bookId}/stream`));
      await expectOverloaded(stream.res, stream.ms);
      const multiplexed = await timed(() => fetch(`${server.url}/api/ai/stream?books=${bookId}`));
      await expectOverloaded(multiplexed.res, multiplexed.ms);
      const published = await timed(() => publish(server.url, bookId, { status: 'GENERATING', generationStep: 'CHAPTERS', message: 'refused' }));
      await expectOverloaded(published.res, published.ms);
      const text = await timed(() =>
        fetch(`${server.url}/api/ai/progress/${bookId}/text`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ chapter: 1, section: 1, offset: 0, text: 'x' }) }),
      );
      await expectOverloaded(text.res, text.ms);
      const ws = await tryWebSocket(`${server.url.replace('http', 'ws')}/api/ai/ws?books=${bookId}`);
      expect(ws.status).toBe(503);
      if ('body' in ws) expect(JSON.parse(ws.body).error.code).toBe('overloaded');

      // Work admitted before goes on: a publish through the peer reaches the open stream.
      expect((await publish(peer.url, bookId, { status: 'GENERATING', generationStep: 'CHAPTERS', message: 'v2' })).status).toBe(200);
      expect((await admitted.version(2, 5_000)).message).toBe('v2');
      expect(admitted.errors, 'the admitted stream was never dropped').toBe(0);

      server.signal('SIGWINCH');
      await until(async () => (await readyz()).status === 200, 5_000, '/readyz to be ready again');
      expect((await publish(server.url, bookId, { status: 'GENERATING', generationStep: 'CHAPTERS', message: 'v3' })).status).toBe(200);
      expect((await admitted.version(3, 5_000)).message).toBe('v3');
      const again = new Watch(`${server.url}/api/ai/progress/${bookId}/stream`);
      try {
        expect((await again.version(3, 5_000)).message).toBe('v3');
      } finally {
        again.close();
      }
    } finally {
      admitted.close();
    }
  }, 60_000);
});
