import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/store/database.js';
import type { DatabaseHandle } from '../../src/store/database.js';
import { RunStore } from '../../src/store/runs.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { silentLog } from '../support/service.js';
import { STORE_TEST_TIMEOUT_MS, storeContract } from './contract.js';

storeContract('postgres', async () => {
  const database = await createTestDatabase();
  const handle = await openDatabase(database.url, '', STORE_TEST_TIMEOUT_MS);
  return {
    handle,
    close: async () => {
      await handle.close();
      await database.drop();
    },
  };
});

describe('RunStore.open on Postgres', () => {
  let database: TestDatabase;
  let handle: DatabaseHandle;
  beforeAll(async () => {
    database = await createTestDatabase();
    handle = await openDatabase(database.url, '', STORE_TEST_TIMEOUT_MS);
  });
  afterAll(async () => {
    await handle?.close();
    await database?.drop();
  });

  it('leaves running runs to their leases: another process may hold them', async () => {
    const first = await RunStore.open(handle, silentLog);
    const run = await first.create({ id: 'held-elsewhere', title: 'Held' }, { chapters: 1, sectionsPerChapter: 1 }, { owner: 'other-process', leaseMs: 60_000 });
    const second = await RunStore.open(handle, silentLog);
    expect((await second.find(run.bookId))?.state).toBe('running');
    expect(await second.claimNext({ owner: 'newcomer', leaseMs: 60_000 }, [])).toBeNull();
  });
});
