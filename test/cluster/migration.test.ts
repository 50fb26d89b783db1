import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterKeys, slotOf } from '../../src/broker/cluster-keys.js';
import { createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { RedisCluster } from '../support/redis-cluster.js';
import { ServerProcess } from '../support/server-process.js';
import { booksOnEveryMaster, heldStates, keepLogs, publishThrough, SERVER_LOG_ENV } from './scenario.js';

/** Two server processes on a six-node cluster while a slot holding books moves between masters. */
let cluster: RedisCluster;
let database: TestDatabase;
let servers: ServerProcess[] = [];
const prefix = uniquePrefix();

beforeAll(async () => {
  [cluster, database] = await Promise.all([RedisCluster.start(), createTestDatabase()]);
  const env = { REDIS_CLUSTER_NODES: cluster.seeds, REDIS_KEY_PREFIX: prefix, DATABASE_URL: database.url, SNAPSHOT_INTERVAL_MS: '1000', MAX_GENERATIONS: '0', ...SERVER_LOG_ENV };
  // One after the other: the first applies the migrations.
  servers = [await ServerProcess.start(env)];
  servers.push(await ServerProcess.start(env));
}, 90_000);

afterAll(async () => {
  keepLogs(servers.map((s) => s.output));
  await Promise.allSettled(servers.map((s) => s.stop('SIGKILL')));
  await Promise.allSettled([cluster?.stop(), database?.drop()]);
});

/** Moves `slot` to `target` as redis-cli --cluster reshard does: IMPORTING/MIGRATING, MIGRATE key batches, SETSLOT NODE. */
async function migrateSlot(slot: number, source: { port: number; id: string }, target: { port: number; id: string }): Promise<number> {
  await cluster.command(target.port, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', source.id);
  await cluster.command(source.port, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id);
  let moved = 0;
  for (;;) {
    const keys = (await cluster.command(source.port, 'CLUSTER', 'GETKEYSINSLOT', slot, 2)) as string[];
    if (keys.length === 0) break;
    await cluster.command(source.port, 'MIGRATE', '127.0.0.1', target.port, '', 0, 5_000, 'KEYS', ...keys);
    moved += keys.length;
    // A pause between batches, as a large slot takes: publishers meet the slot half moved.
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  for (const port of [target.port, source.port, ...(await cluster.masters()).map((m) => m.port)]) {
    await cluster.command(port, 'CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
  }
  return moved;
}

describe('Redis Cluster slot migration under load, two server processes', () => {
  it('moves a slot holding books while they are published and watched: nothing lost, every watcher on the latest state', async () => {
    const books = await booksOnEveryMaster(cluster, prefix, 3, 'moving');
    const slot = slotOf(clusterKeys(prefix).state(books[0]!));
    let moved = 0;
    await publishThrough({
      servers: servers.map((s) => s.url),
      books,
      fail: async () => {
        const masters = await cluster.masters();
        const sourcePort = await cluster.ownerOf(slot);
        const source = masters.find((m) => m.port === sourcePort)!;
        const target = masters.find((m) => m.port !== sourcePort)!;
        moved = await migrateSlot(slot, source, target);
        expect(await cluster.ownerOf(slot)).toBe(target.port);
      },
      recovered: () => cluster.healthy(),
      held: (ids) => heldStates(cluster, prefix, ids),
      databaseUrl: database.url,
    });
    // The state, the dirty set and the claim keys of the partition moved together.
    expect(moved).toBeGreaterThanOrEqual(2);
  }, 120_000);
});
