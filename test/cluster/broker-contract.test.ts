import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLUSTER_PARTITIONS, clusterKeys, partitionOf, slotOf } from '../../src/broker/cluster-keys.js';
import { RedisBroker } from '../../src/broker/redis.js';
import { DEFAULT_BACKEND_TIMEOUT_MS, DEFAULT_CLUSTER_SLOTS_REFRESH_MS } from '../../src/config.js';
import { ProgressTracker } from '../../src/progress/tracker.js';
import { migrateDatabase } from '../../src/store/database.js';
import { createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { RedisCluster, RedisSentinels } from '../support/redis-cluster.js';
import { silentLog } from '../support/service.js';
import { brokerContract } from '../broker/contract.js';

let cluster: RedisCluster;
let sentinels: RedisSentinels;
let database: TestDatabase;

beforeAll(async () => {
  [cluster, sentinels, database] = await Promise.all([RedisCluster.start(), RedisSentinels.start(), createTestDatabase()]);
  await migrateDatabase(database.url);
}, 90_000);

afterAll(async () => {
  await Promise.allSettled([cluster?.stop(), sentinels?.stop(), database?.drop()]);
});

const hostPorts = (list: string) => list.split(',').map((entry) => ({ host: '127.0.0.1', port: Number(entry.split(':')[1]) }));

async function clusterBroker(keyPrefix = uniquePrefix(), pubsub: 'sharded' | 'classic' = 'sharded'): Promise<RedisBroker> {
  const broker = new RedisBroker({
    target: { kind: 'cluster', nodes: hostPorts(cluster.seeds), pubsub, password: null, tls: false, slotsRefreshMs: DEFAULT_CLUSTER_SLOTS_REFRESH_MS },
    keyPrefix,
    ttlSeconds: 600,
    log: silentLog,
    timeoutMs: DEFAULT_BACKEND_TIMEOUT_MS,
  });
  if (!(await broker.ready(10_000))) throw new Error('the cluster is not answering');
  return broker;
}

async function sentinelBroker(): Promise<RedisBroker> {
  const broker = new RedisBroker({
    target: { kind: 'sentinel', sentinels: hostPorts(sentinels.sentinels), masterName: RedisSentinels.MASTER_NAME, password: null, tls: false },
    keyPrefix: uniquePrefix(),
    ttlSeconds: 600,
    log: silentLog,
    timeoutMs: DEFAULT_BACKEND_TIMEOUT_MS,
  });
  if (!(await broker.ready(10_000))) throw new Error('the Sentinel master is not answering');
  return broker;
}

brokerContract('redis cluster (sharded pub/sub)', () => clusterBroker());
brokerContract('redis cluster (classic pub/sub)', () => clusterBroker(uniquePrefix(), 'classic'));
brokerContract('redis sentinel', () => sentinelBroker());

describe('Redis Cluster wire format', () => {
  it('keeps a book\'s state, fence, dirty mark and channel in the slot of its partition, on every master', async () => {
    const prefix = uniquePrefix();
    const broker = await clusterBroker(prefix);
    const admin = new Cluster(hostPorts(cluster.seeds));
    try {
      const tracker = new ProgressTracker({ states: broker });
      const books = Array.from({ length: 60 }, (_, i) => `spread-${i}`);
      for (const id of books) await tracker.updateProgress(id, { message: 'Writing Chapter 1 of 3...' });
      const keys = clusterKeys(prefix);
      const owners = new Set<number>();
      for (const id of books) {
        const p = partitionOf(id);
        expect(keys.state(id)).toBe(`${prefix}{p${p}}:progress:${id}`);
        const slot = Number(await admin.cluster('KEYSLOT', keys.state(id)));
        for (const name of [keys.fence(id), keys.channel(id), keys.dirty(p), keys.feed(p)!]) {
          expect(Number(await admin.cluster('KEYSLOT', name))).toBe(slot);
        }
        expect(JSON.parse((await admin.get(keys.state(id)))!)).toMatchObject({ bookId: id, version: 1 });
        expect(await admin.sismember(keys.dirty(p), id)).toBe(1);
        owners.add(await cluster.ownerOf(slot));
      }
      expect(owners.size, 'books spread over all three masters').toBe(3);
    } finally {
      admin.disconnect();
      await broker.close();
    }
  });

  it('publishes with SPUBLISH to the owning shard only, which a foreign SSUBSCRIBE receives', async () => {
    const prefix = uniquePrefix();
    const broker = await clusterBroker(prefix);
    const keys = clusterKeys(prefix);
    const before = await spublishCounts();
    try {
      const tracker = new ProgressTracker({ states: broker });
      const saved = await tracker.updateProgress('sharded', { message: 'one' });
      const after = await spublishCounts();
      const grown = [...after].filter(([port, calls]) => calls > (before.get(port) ?? 0)).map(([port]) => port);
      const owner = await cluster.ownerOf(Number(await cluster.command(cluster.ports[0]!, 'CLUSTER', 'KEYSLOT', keys.state('sharded'))));
      expect(grown).toEqual([owner]);
      expect(saved.version).toBe(1);
    } finally {
      await broker.close();
    }
  });

  it('uses one subscriber per master for any number of watched books', async () => {
    const broker = await clusterBroker();
    try {
      const stops = await Promise.all(Array.from({ length: 200 }, (_, i) => broker.subscribe(`many-${i}`, () => {})));
      const masters = await cluster.masters();
      expect(masters).toHaveLength(3);
      for (const master of masters) {
        const list = (await cluster.command(master.port, 'CLIENT', 'LIST')) as string;
        const ours = list.split('\n').filter((line) => line.includes('booksai-progress'));
        expect(ours.filter((line) => line.includes('name=booksai-progress-ssub')), `one subscriber on ${master.port}`).toHaveLength(1);
        expect(ours.length, `connections of this process to ${master.port}`).toBeLessThanOrEqual(3);
      }
      for (const stop of stops) stop();
    } finally {
      await broker.close();
    }
  });

  it('has as many partitions as docs/protocol.md says, and computes slots as Redis does', async () => {
    expect(CLUSTER_PARTITIONS).toBe(256);
    for (const key of ['booksai:{p0}:progress:x', 'plain-key', 'a{}b', '{}{x}', 'booksai:{p17}:progress:{book}', 'ünïcode{ß}']) {
      expect(slotOf(key), key).toBe(Number(await cluster.command(cluster.ports[0]!, 'CLUSTER', 'KEYSLOT', key)));
    }
  });
});

const run = promisify(execFile);

/** `booksai-progress inspect <bookId>` as an operator runs it. */
async function inspect(bookId: string, env: Record<string, string>): Promise<string> {
  const { stdout } = await run(process.execPath, ['bin/booksai-progress.js', 'inspect', bookId], { env: { PATH: process.env.PATH ?? '', DATABASE_URL: database.url, ...env } });
  return stdout;
}

describe('npm run inspect', () => {
  it('prints a book\'s key, slot, node and state on a cluster', async () => {
    const prefix = uniquePrefix();
    const broker = await clusterBroker(prefix);
    try {
      await new ProgressTracker({ states: broker }).updateProgress('inspected', { message: 'Writing Chapter 1 of 3...' });
      const keys = clusterKeys(prefix);
      const slot = slotOf(keys.state('inspected'));
      const out = await inspect('inspected', { REDIS_CLUSTER_NODES: cluster.seeds, REDIS_KEY_PREFIX: prefix });
      expect(out).toContain(`key:       ${keys.state('inspected')}`);
      expect(out).toContain(`slot:      ${slot} (partition ${partitionOf('inspected')} of 256)`);
      expect(out).toContain(`node:      127.0.0.1:${await cluster.ownerOf(slot)}`);
      expect(out).toContain(`dirty:     yes, in ${keys.dirty(partitionOf('inspected'))}`);
      expect(out).toContain('"message": "Writing Chapter 1 of 3..."');
    } finally {
      await broker.close();
    }
  });

  it('prints the plain key and the current master under Sentinel', async () => {
    const broker = await sentinelBroker();
    try {
      await new ProgressTracker({ states: broker }).updateProgress('inspected', { message: 'Outline' });
      const out = await inspect('inspected', { REDIS_SENTINELS: sentinels.sentinels, REDIS_SENTINEL_MASTER: RedisSentinels.MASTER_NAME, REDIS_KEY_PREFIX: broker.keys.state('').replace(/progress:$/, '') });
      expect(out).toContain(`key:       ${broker.keys.state('inspected')}`);
      expect(out).toContain('slot:      none (not a cluster)');
      expect(out).toContain(`node:      127.0.0.1:${await sentinels.currentMaster()} (master)`);
      expect(out).toContain('"version": 1');
    } finally {
      await broker.close();
    }
  });
});

/** Calls of SPUBLISH per master port (INFO commandstats). */
async function spublishCounts(): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  for (const master of await cluster.masters()) {
    const info = (await cluster.command(master.port, 'INFO', 'commandstats')) as string;
    counts.set(master.port, Number(/cmdstat_spublish:calls=(\d+)/.exec(info)?.[1] ?? 0));
  }
  return counts;
}
