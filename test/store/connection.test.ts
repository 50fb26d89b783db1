import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/store/database.js';
import type { DatabaseHandle } from '../../src/store/database.js';
import { isDatabaseUnavailable } from '../../src/store/failures.js';
import { PgStore } from '../../src/store/store.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { PgProxy } from '../support/pg-proxy.js';

let database: TestDatabase;
let proxy: PgProxy;
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
    proxy = await PgProxy.start(database.url);
    handle = await openDatabase(proxy.url(database.url), '');
    const store = new PgStore(handle.db);

    proxy.resetFirstQuery = true;
    await expect(store.getProgress('any-book')).rejects.toSatisfy(isDatabaseUnavailable);

    proxy.resetFirstQuery = false;
    // A full round trip later (many turns of the event loop), nothing was left rejected in the background.
    expect(await store.getProgress('any-book')).toBeNull();
    expect(unhandled).toEqual([]);
  });

  it('a cut pool recovers on its own once Postgres is reachable again', async () => {
    proxy = await PgProxy.start(database.url);
    handle = await openDatabase(proxy.url(database.url), '');
    const store = new PgStore(handle.db);
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
});
