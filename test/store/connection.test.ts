import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_BACKEND_TIMEOUT_MS } from '../../src/config.js';
import { openDatabase } from '../../src/store/database.js';
import type { DatabaseHandle } from '../../src/store/database.js';
import { isDatabaseUnavailable } from '../../src/store/failures.js';
import { PgProgressStore } from '../../src/store/progress.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { until } from '../support/wait.js';

let database: TestDatabase;
let proxy: FaultProxy;
let handle: DatabaseHandle;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

beforeAll(async () => {
  database = await createTestDatabase();
  process.on('unhandledRejection', onUnhandled);
});

afterEach(async () => {
  await handle?.close().catch(() => {});
  await proxy?.close();
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await database?.drop();
});

describe('Postgres connections that break', () => {
  it('a reset during the first query of a new connection is a handled, retryable failure', async () => {
    proxy = await FaultProxy.start(database.url);
    handle = await openDatabase(proxy.url(database.url), '', DEFAULT_BACKEND_TIMEOUT_MS);
    const store = new PgProgressStore(handle.db, handle.deadline);

    proxy.resetFirstQuery = true;
    await expect(store.getProgress('any-book')).rejects.toSatisfy(isDatabaseUnavailable);

    proxy.resetFirstQuery = false;
    // A full round trip later (many turns of the event loop), nothing was left rejected in the background.
    expect(await store.getProgress('any-book')).toBeNull();
    expect(unhandled).toEqual([]);
  });

  it('a cut pool recovers on its own once Postgres is reachable again', async () => {
    proxy = await FaultProxy.start(database.url);
    handle = await openDatabase(proxy.url(database.url), '', DEFAULT_BACKEND_TIMEOUT_MS);
    const store = new PgProgressStore(handle.db, handle.deadline);
    expect(await store.getProgress('any-book')).toBeNull();

    proxy.cut();
    await expect(store.getProgress('any-book')).rejects.toSatisfy(isDatabaseUnavailable);
    proxy.heal();
    // A pooled connection reset by the cut may fail one more query before the pool notices; then it reconnects.
    let answered = false;
    for (let attempt = 0; attempt < 5 && !answered; attempt++) {
      answered = await store.getProgress('any-book').then(
        () => true,
        (error: unknown) => (isDatabaseUnavailable(error) ? false : Promise.reject(error)),
      );
    }
    expect(answered).toBe(true);
    expect(unhandled).toEqual([]);
  });

  it('a connection that stops answering without closing fails its query at the deadline and is replaced', async () => {
    proxy = await FaultProxy.start(database.url);
    handle = await openDatabase(proxy.url(database.url), '', 500);
    const store = new PgProgressStore(handle.db, handle.deadline);
    expect(await store.getProgress('any-book')).toBeNull();
    const open = proxy.accepted;
    const ended = proxy.ended; // the migrations' connection

    proxy.swallow();
    const started = performance.now();
    await expect(store.getProgress('any-book')).rejects.toSatisfy(isDatabaseUnavailable);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(store.answering).toBe(false);
    // Nothing came back for 1.5 x the timeout: the connection is closed, not left holding its query.
    await until(() => proxy.ended > ended, 3_000, 'the stalled connection to be closed');

    proxy.deliver();
    let answered = false;
    await until(async () => (answered = await store.getProgress('any-book').then(() => true, () => false)), 5_000, 'a query to succeed on a new connection');
    expect(answered).toBe(true);
    expect(proxy.accepted).toBeGreaterThan(open);
    expect(store.answering).toBe(true);
    expect(unhandled).toEqual([]);
  });
});
