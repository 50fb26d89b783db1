import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBroker } from '../../src/broker/redis.js';
import { ProgressTracker } from '../../src/progress/tracker.js';
import { DEFAULT_BACKEND_TIMEOUT_MS } from '../../src/config.js';
import { openDatabase } from '../../src/store/database.js';
import type { DatabaseHandle } from '../../src/store/database.js';
import { isDatabaseUnavailable } from '../../src/store/failures.js';
import { Snapshotter } from '../../src/store/snapshotter.js';
import { PgProgressStore } from '../../src/store/progress.js';
import { REDIS_URL, createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { silentLog } from '../support/service.js';
import { until } from '../support/wait.js';

let database: TestDatabase;
let handle: DatabaseHandle;
const brokers: RedisBroker[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  handle = await openDatabase(database.url, '', DEFAULT_BACKEND_TIMEOUT_MS);
});

afterAll(async () => {
  for (const broker of brokers.splice(0)) await broker.close();
  await handle?.close();
  await database?.drop();
});

async function connectedBroker(prefix: string): Promise<RedisBroker> {
  const broker = new RedisBroker({ url: REDIS_URL, keyPrefix: prefix, ttlSeconds: 600, log: silentLog, timeoutMs: DEFAULT_BACKEND_TIMEOUT_MS });
  brokers.push(broker);
  if (!(await broker.ready(5_000))) throw new Error(`redis at ${REDIS_URL} is not answering`);
  return broker;
}

const LEASE_MS = 300;

describe('a snapshot claim that is never settled', () => {
  it('returns its books to the next claim once the lease runs out, so a process dying mid-snapshot loses nothing', async () => {
    const prefix = uniquePrefix();
    // Two processes: the one that dies, and the survivor; same Redis, same prefix.
    const dying = await connectedBroker(prefix);
    const survivor = await connectedBroker(prefix);
    const tracker = new ProgressTracker({ states: survivor });
    await tracker.updateProgress('claimed-a', { status: 'GENERATING', message: 'a' });
    await tracker.updateProgress('claimed-b', { status: 'GENERATING', message: 'b' });

    const taken = await dying.claimDirty('dead-process', LEASE_MS, 1);
    expect(taken?.sort()).toEqual(['claimed-a', 'claimed-b']);
    // ... and the process dies here: no write, no settleClaim.

    // Committed meanwhile: goes to the dirty set, not to the dead claim.
    await tracker.updateProgress('late-c', { status: 'GENERATING', message: 'c' });
    // While the lease runs, nobody else can claim, in a new round or outside rounds.
    expect(await survivor.claimDirty('survivor', LEASE_MS, 2)).toBeNull();
    expect(await survivor.claimDirty('survivor', LEASE_MS, null)).toBeNull();

    let next: string[] | null = null;
    await until(async () => (next = await survivor.claimDirty('survivor', 5_000, null)) !== null, 5_000, 'the dead claim to expire');
    expect(next!.sort()).toEqual(['claimed-a', 'claimed-b', 'late-c']);
    await survivor.settleClaim('survivor', true);

    // The dead owner settling late changes nothing: its lease is gone.
    await dying.settleClaim('dead-process', false);
    expect(await survivor.claimDirty('survivor', LEASE_MS, null)).toEqual([]);
    await survivor.settleClaim('survivor', true);
  });

  it('is picked up by the next Snapshotter run, which writes the books to Postgres', async () => {
    const prefix = uniquePrefix();
    const dying = await connectedBroker(prefix);
    const survivor = await connectedBroker(prefix);
    const store = new PgProgressStore(handle.db, handle.deadline);
    const tracker = new ProgressTracker({ states: survivor });
    const states = [
      await tracker.updateProgress('lost-1', { status: 'GENERATING', generationStep: 'OUTLINE' }),
      await tracker.updateProgress('lost-2', { status: 'GENERATING', generationStep: 'STRUCTURE' }),
    ];
    expect(await dying.claimDirty('dead-process', LEASE_MS, null)).toHaveLength(2);

    const snapshotter = new Snapshotter({ broker: survivor, store, intervalMs: 60_000, owner: 'survivor', log: silentLog });
    expect(await snapshotter.snapshot()).toBeNull();
    let written: number | null = null;
    await until(async () => (written = await snapshotter.snapshot()) !== null, 5_000, 'the survivor to take over the claim');
    expect(written).toBe(2);
    for (const state of states) expect(await store.getProgress(state.bookId)).toEqual(state);
  });

  it('is given back at once when the write fails, so the next snapshot (any process) writes the books', async () => {
    const broker = await connectedBroker(uniquePrefix());
    const tracker = new ProgressTracker({ states: broker });
    const state = await tracker.updateProgress('retried', { status: 'GENERATING', message: 'x' });

    // A process whose Postgres is unreachable: its write fails with a connection error.
    const proxy = await FaultProxy.start(database.url);
    const unreachable = await openDatabase(proxy.url(database.url), '', DEFAULT_BACKEND_TIMEOUT_MS);
    try {
      proxy.cut();
      const cutOff = new Snapshotter({ broker, store: new PgProgressStore(unreachable.db, unreachable.deadline), intervalMs: 60_000, owner: 'cut-off', log: silentLog });
      await expect(cutOff.snapshot()).rejects.toSatisfy(isDatabaseUnavailable);
    } finally {
      await unreachable.close().catch(() => {});
      await proxy.close();
    }

    const store = new PgProgressStore(handle.db, handle.deadline);
    const healthy = new Snapshotter({ broker, store, intervalMs: 60_000, owner: 'healthy', log: silentLog });
    // No lease to wait for: the failed owner settled its claim and returned the books.
    expect(await healthy.snapshot()).toBe(1);
    expect(await store.getProgress('retried')).toEqual(state);
  });
});
