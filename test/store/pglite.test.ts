import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/store/database.js';
import { RunStore } from '../../src/store/runs.js';
import { silentLog } from '../support/service.js';
import { STORE_TEST_TIMEOUT_MS, storeContract } from './contract.js';

const folders: string[] = [];
afterAll(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** A DATA_DIR of its own, removed after the file. */
function dataDir(): string {
  const folder = mkdtempSync(join(tmpdir(), 'booksai-store-'));
  folders.push(folder);
  return folder;
}

storeContract('pglite', async () => {
  const handle = await openDatabase(null, dataDir(), STORE_TEST_TIMEOUT_MS);
  return { handle, close: () => handle.close() };
});

describe('RunStore.open on the embedded database', () => {
  it('ends the leases of runs the last stop interrupted, so they resume at once', async () => {
    const folder = dataDir();
    const before = await openDatabase(null, folder, STORE_TEST_TIMEOUT_MS);
    let bookId: string;
    try {
      const runs = await RunStore.open(before, silentLog);
      ({ bookId } = await runs.create({ id: 'interrupted', title: 'Interrupted' }, { chapters: 1, sectionsPerChapter: 1 }, { owner: 'stopped', leaseMs: 60_000 }));
    } finally {
      await before.close();
    }

    const after = await openDatabase(null, folder, STORE_TEST_TIMEOUT_MS);
    try {
      const runs = await RunStore.open(after, silentLog);
      expect((await runs.find(bookId))?.state).toBe('stalled');
      expect(await runs.claimNext({ owner: 'restarted', leaseMs: 60_000 }, [])).toMatchObject({ bookId, epoch: 2, claims: 2 });
    } finally {
      await after.close();
    }
  });
});
