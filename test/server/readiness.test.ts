import { afterEach, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { POSTGRES_ADMIN_URL, REDIS_URL, createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { startServer, startTestService } from '../support/service.js';
import { until } from '../support/wait.js';
import { Watch } from '../support/events.js';

interface Ready {
  status: number;
  retryAfter: string | null;
  body: { success: boolean; data?: Record<string, unknown>; error?: { code: string; message: string; details?: Record<string, unknown> } };
}

async function readyz(url: string): Promise<Ready> {
  const response = await fetch(`${url}/readyz`);
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: (await response.json()) as Ready['body'] };
}

const started: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const part of started.splice(0).reverse()) await part.close().catch(() => {});
});

describe('GET /readyz', () => {
  it('is 200 while the broker and the database answer, without a token even with authentication on', async () => {
    const service = await startServer({ AUTH_JWT_SECRET: 'a-secret-of-at-least-thirty-two-bytes!!' });
    started.push(service);
    const ready = await readyz(service.url);
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ success: true, data: { ready: true, draining: false, overloaded: false, broker: 'ok', database: 'ok' } });
    expect((await fetch(`${service.url}/api/books`)).status).toBe(401);
  });

  it('is 200 in the embedded default', async () => {
    const service = await startTestService({ REDIS_URL: '' });
    started.push(service);
    expect((await readyz(service.url)).body.data).toEqual({ ready: true, draining: false, overloaded: false, broker: 'ok', database: 'ok' });
  });

  it('is 503 not_ready with Retry-After while Redis does not answer, and 200 again once it does; /healthz stays 200', async () => {
    const proxy = await FaultProxy.start(REDIS_URL);
    started.push(proxy);
    const service = await startServer({ REDIS_URL: proxy.url(REDIS_URL), BACKEND_TIMEOUT_MS: '500' });
    started.push(service);
    await until(async () => (await readyz(service.url)).status === 200, 10_000, 'ready');

    proxy.cut();
    let down: Ready | undefined;
    await until(async () => (down = await readyz(service.url)).status === 503, 10_000, '/readyz to say the broker is down');
    expect(down!.retryAfter).not.toBeNull();
    expect(down!.body.success).toBe(false);
    expect(down!.body.error).toMatchObject({ code: 'not_ready', details: { ready: false, broker: 'down', database: 'ok', draining: false } });
    expect(down!.body.error?.message).toMatch(/broker/);
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);

    proxy.heal();
    await until(async () => (await readyz(service.url)).status === 200, 15_000, '/readyz to be 200 again');
  });

  it('is 503 while Postgres does not answer', async () => {
    const database: TestDatabase = await createTestDatabase();
    started.push({ close: () => database.drop() });
    const proxy = await FaultProxy.start(POSTGRES_ADMIN_URL);
    started.push(proxy);
    const service = await startTestService({ DATABASE_URL: proxy.url(database.url), BACKEND_TIMEOUT_MS: '500' });
    started.push(service);
    expect((await readyz(service.url)).status).toBe(200);

    proxy.cut();
    let down: Ready | undefined;
    await until(async () => (down = await readyz(service.url)).status === 503, 10_000, '/readyz to say the database is down');
    expect(down!.body.error?.details).toMatchObject({ broker: 'ok', database: 'down' });

    proxy.heal();
    await until(async () => (await readyz(service.url)).status === 200, 15_000, '/readyz to be 200 again');
  });

  it('is 503 from the first moment of shutdown, while streams still deliver during SHUTDOWN_DRAIN_MS', async () => {
    const service: Service = await startServer({ SHUTDOWN_DRAIN_MS: '3000' });
    started.push(service);
    await service.tracker.updateProgress('draining-book', { message: 'before' });
    const watch = new Watch(`${service.url}/api/ai/progress/draining-book/stream`);
    await watch.next((state) => state.message === 'before', 10_000);

    const closing = service.close();
    const draining = await readyz(service.url);
    expect(draining.status).toBe(503);
    expect(draining.body.error).toMatchObject({ code: 'not_ready', details: { draining: true } });
    expect(draining.body.error?.message).toMatch(/shutting down/);
    // Still serving: the open stream gets a new update, and a new request is answered.
    await service.tracker.updateProgress('draining-book', { message: 'while draining' });
    await watch.next((state) => state.message === 'while draining', 10_000);
    // The same connection: it was never cut (EventSource would have reconnected and counted an error).
    expect(watch.errors).toBe(0);
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
    await closing;
    watch.source.close();
  });
});
