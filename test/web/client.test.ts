import { EventSource } from 'eventsource';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { watch } from '../../web/client.js';
import type { ConnectionState, Watching } from '../../web/client.js';
import { BlockingProxy } from '../support/blocking-proxy.js';
import { createTestDatabase, uniquePrefix } from '../support/backends.js';
import { freePort } from '../support/ports.js';
import { startServer, startTestService } from '../support/service.js';
import { until, withTimeout } from '../support/wait.js';

let service: Service;
let proxy: BlockingProxy;
let watching: Watching | null = null;
let n = 0;
const book = () => `client-${process.pid}-${Date.now()}-${n++}`;

beforeEach(async () => {
  service = await startServer();
  proxy = await BlockingProxy.start(service.url);
});

afterEach(async () => {
  watching?.close();
  watching = null;
  await proxy.close();
  await service.close();
});

/** Records what the client passes on and which connection states it reports. */
function observe() {
  const seen: BookProgress[] = [];
  const states: ConnectionState[] = [];
  const fast = { EventSource, pollIntervalMs: 100, sseFailuresBeforePolling: 2, sseRetryMs: 400, onConnection: (s: ConnectionState) => states.push(s) };
  return { seen, states, fast };
}

describe('web client in Node', () => {
  it('follows a book over SSE and stops at the terminal state', async () => {
    const id = book();
    await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'first' });
    const { seen, states, fast } = observe();
    watching = watch([id], (p) => seen.push(p), { ...fast, baseUrl: service.url });
    await until(() => states.includes('live') && seen.length === 1, 5_000, 'the live stream and the first state');
    for (let i = 0; i < 5; i++) await service.tracker.updateProgress(id, { message: `update ${i}` });
    await service.tracker.markComplete(id, 0);
    await until(() => states.at(-1) === 'closed', 5_000, 'the client to stop at COMPLETE');
    expect(seen.map((s) => s.version)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(seen.at(-1)?.status).toBe('COMPLETE');
    expect(proxy.streamRequests).toBe(0); // straight to the server, not through the proxy
  });

  it('watches several books on one connection', async () => {
    const [a, b] = [book(), book()];
    const { seen, states, fast } = observe();
    watching = watch([a, b], (p) => seen.push(p), { ...fast, baseUrl: proxy.url });
    await until(() => states.includes('live'), 5_000, 'the live stream');
    await service.tracker.updateProgress(a, { message: 'a1' });
    await service.tracker.updateProgress(b, { message: 'b1' });
    await service.tracker.markComplete(a, 0);
    await service.tracker.markError(b, 'the model gave up');
    await until(() => states.at(-1) === 'closed', 5_000, 'both books to finish');
    expect(seen.map((s) => `${s.bookId === a ? 'a' : 'b'}${s.version}`)).toEqual(['a1', 'b1', 'a2', 'b2']);
    expect(proxy.streamRequests).toBe(1);
  });

  it('falls back to polling when SSE is refused, ignores stale versions, and goes back to SSE', async () => {
    const id = book();
    const first = await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'v1' });
    proxy.blockStreams = true;
    const { seen, states, fast } = observe();
    watching = watch([id], (p) => seen.push(p), { ...fast, baseUrl: proxy.url });
    await until(() => states.includes('polling') && seen.length === 1, 10_000, 'polling to deliver the first state');

    await service.tracker.updateProgress(id, { message: 'v2' });
    await service.tracker.updateProgress(id, { message: 'v3' });
    await until(() => seen.at(-1)?.version === 3, 5_000, 'polling to deliver version 3');

    // Polling may skip a version (latest state wins) but never goes back.
    const shown = seen.length;
    const pollsBefore = proxy.pollRequests;
    proxy.staleBody = JSON.stringify({ success: true, data: first });
    await until(() => proxy.staleBody === null && proxy.pollRequests > pollsBefore, 5_000, 'the stale answer to be served');
    expect(seen).toHaveLength(shown);

    proxy.blockStreams = false;
    await until(() => states.at(-1) === 'live', 5_000, 'the client to return to SSE');
    await service.tracker.markComplete(id, 0);
    await until(() => states.at(-1) === 'closed', 5_000, 'the client to stop at COMPLETE');
    const versions = seen.map((s) => s.version);
    expect(versions).toEqual([...new Set(versions)].sort((x, y) => x - y));
    expect(versions[0]).toBe(1);
    expect(versions.at(-1)).toBe(4);
  });

  it('reconnects after the server restarts and catches up', async () => {
    const prefix = uniquePrefix();
    const port = String(await freePort());
    const database = await createTestDatabase();
    let first: Service | null = await startTestService({ PORT: port, REDIS_KEY_PREFIX: prefix, DATABASE_URL: database.url });
    try {
      const id = book();
      await first.tracker.updateProgress(id, { message: 'before the restart' });
      const { seen, states, fast } = observe();
      watching = watch([id], (p) => seen.push(p), { ...fast, baseUrl: first.url });
      await until(() => seen.length === 1 && states.at(-1) === 'live', 5_000, 'the first state, live');

      await first.close();
      first = null;
      const second = await startTestService({ PORT: port, REDIS_KEY_PREFIX: prefix, DATABASE_URL: database.url });
      try {
        await second.tracker.updateProgress(id, { message: 'after the restart' });
        await until(() => seen.at(-1)?.message === 'after the restart' && states.at(-1) === 'live', 15_000, 'the client to catch up live');
        expect(seen.map((s) => s.version)).toEqual([1, 2]);
      } finally {
        watching.close();
        await second.close();
      }
    } finally {
      await first?.close();
      await database.drop();
    }
  });

  it('reports offline when nothing answers, and recovers', async () => {
    const id = book();
    await service.tracker.updateProgress(id, { message: 'v1' });
    await proxy.close();
    const { seen, states, fast } = observe();
    watching = watch([id], (p) => seen.push(p), { ...fast, baseUrl: proxy.url });
    await until(() => states.includes('offline'), 10_000, 'the client to report offline');
    expect(seen).toEqual([]);
    proxy = await BlockingProxy.start(service.url); // a new port: the old one stays dead
    watching.close();
    watching = watch([id], (p) => seen.push(p), { ...fast, baseUrl: proxy.url });
    await withTimeout(
      new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (seen.length > 0) {
            clearInterval(check);
            resolve();
          }
        }, 20);
      }),
      5_000,
      'the state once the server answers',
    );
    expect(seen[0]?.version).toBe(1);
  });
});
