import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisBroker } from '../../src/broker/redis.js';
import type { BookProgress } from '../../src/progress/schema.js';
import { DEFAULT_BACKEND_TIMEOUT_MS, DEFAULT_CLUSTER_SLOTS_REFRESH_MS } from '../../src/config.js';
import { openDatabase } from '../../src/store/database.js';
import type { DatabaseHandle } from '../../src/store/database.js';
import { Snapshotter } from '../../src/store/snapshotter.js';
import { PgProgressStore } from '../../src/store/progress.js';
import { createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { RedisCluster } from '../support/redis-cluster.js';
import { silentLog } from '../support/service.js';
import { until } from '../support/wait.js';

/** Two processes' snapshotters (each its broker and store) sharing the dirty partitions of one cluster. */
let cluster: RedisCluster;
let database: TestDatabase;
const handles: DatabaseHandle[] = [];
const brokers: RedisBroker[] = [];

beforeAll(async () => {
  [cluster, database] = await Promise.all([RedisCluster.start(), createTestDatabase()]);
}, 90_000);

afterAll(async () => {
  await Promise.allSettled(brokers.map((b) => b.close()));
  await Promise.allSettled(handles.map((h) => h.close()));
  await Promise.allSettled([cluster?.stop(), database?.drop()]);
});

async function process_(prefix: string, owner: string): Promise<{ broker: RedisBroker; store: PgProgressStore; snapshotter: Snapshotter }> {
  const broker = new RedisBroker({
    target: { kind: 'cluster', nodes: cluster.ports.map((port) => ({ host: '127.0.0.1', port })), pubsub: 'sharded', password: null, tls: false, slotsRefreshMs: DEFAULT_CLUSTER_SLOTS_REFRESH_MS },
    keyPrefix: prefix,
    ttlSeconds: 600,
    log: silentLog,
    timeoutMs: DEFAULT_BACKEND_TIMEOUT_MS,
  });
  brokers.push(broker);
  if (!(await broker.ready(10_000))) throw new Error('the cluster is not answering');
  const handle = await openDatabase(database.url, '', DEFAULT_BACKEND_TIMEOUT_MS);
  handles.push(handle);
  const store = new PgProgressStore(handle.db, handle.deadline);
  return { broker, store, snapshotter: new Snapshotter({ broker, store, intervalMs: 30_000, owner, log: silentLog }) };
}

const state = (bookId: string, version: number): BookProgress => ({
  bookId,
  status: 'GENERATING',
  generationStep: 'CHAPTERS',
  currentChapter: 1,
  totalChapters: 3,
  currentSection: 0,
  totalSections: 0,
  overallProgress: 40,
  message: `version ${version}`,
  timestamp: 1_700_000_000_000 + version,
  version,
});

describe('snapshots on a cluster', () => {
  it('splits a round between processes by partition: each book written once, one upsert per chunk, no partition claimed twice', async () => {
    const prefix = uniquePrefix();
    const a = await process_(prefix, 'process-a');
    const b = await process_(prefix, 'process-b');
    const books = Array.from({ length: 4_000 }, (_, i) => `split-${i}`);
    for (let i = 0; i < books.length; i += 500) await Promise.all(books.slice(i, i + 500).map((id) => a.broker.commit(state(id, 1), null)));

    const [writtenA, writtenB] = await Promise.all([a.snapshotter.snapshot(7), b.snapshotter.snapshot(7)]);
    expect((writtenA ?? 0) + (writtenB ?? 0)).toBe(books.length);
    expect(writtenA, 'process a took part of the round').toBeGreaterThan(0);
    expect(writtenB, 'process b took part of the round').toBeGreaterThan(0);
    // Each process fills whole chunks across its claims: at most one partial chunk each.
    const statements = a.store.stats.upsertStatements + b.store.stats.upsertStatements;
    expect(statements).toBeLessThanOrEqual(Math.ceil(books.length / 1_000) + 2);

    // The round is taken everywhere; the next one finds nothing dirty.
    expect(await a.broker.claimDirty('process-c', 10_000, 7)).toBeNull();
    expect(await b.broker.claimDirty('process-c', 10_000, 8)).toEqual([]);
    await b.broker.settleClaim('process-c', true);
    const saved = await a.store.getProgress('split-3999');
    expect(saved?.version).toBe(1);
  }, 60_000);

  it('gives the partitions of a process that died mid-snapshot to the next claim', async () => {
    const prefix = uniquePrefix();
    const a = await process_(prefix, 'dies');
    const b = await process_(prefix, 'survives');
    const books = Array.from({ length: 300 }, (_, i) => `lease-${i}`);
    await Promise.all(books.map((id) => a.broker.commit(state(id, 1), null)));
    const taken = await a.broker.claimDirty('dies', 2_000, null); // and never settles
    expect(new Set(taken)).toEqual(new Set(books));
    expect(await b.broker.claimDirty('survives', 10_000, null)).toBeNull();
    // Its partitions' leases run out one batch of claims after another; each snapshot takes what has.
    let written = 0;
    await until(async () => (written += (await b.snapshotter.snapshot()) ?? 0) >= books.length, 10_000, 'the dead process\'s leases run out');
    expect(written).toBe(books.length);
  }, 60_000);
});
