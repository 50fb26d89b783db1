import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { RedisCluster } from '../support/redis-cluster.js';
import { ServerProcess } from '../support/server-process.js';
import { until } from '../support/wait.js';
import { booksOnEveryMaster, heldStates, keepLogs, publishThrough, SERVER_LOG_ENV } from './scenario.js';
import type { Scenario } from './scenario.js';

/** Two server processes on a six-node cluster (three masters, three replicas), while masters fail. */
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

function scenario(books: string[], fail: () => Promise<void>): Scenario {
  return {
    servers: servers.map((s) => s.url),
    books,
    fail,
    recovered: () => cluster.healthy(),
    held: (ids) => heldStates(cluster, prefix, ids),
    databaseUrl: database.url,
  };
}

describe('Redis Cluster failover under load, two server processes', () => {
  it('survives kill -9 of a master: 503 with Retry-After during the election, then every watcher on the latest state', async () => {
    const books = await booksOnEveryMaster(cluster, prefix, 3, 'killed');
    const load = await publishThrough(
      scenario(books, async () => {
        const masters = await cluster.masters();
        expect(masters).toHaveLength(3);
        await cluster.kill(masters[0]!.port);
      }),
    );
    expect(load.unavailable, 'publishes refused while the master was down').toBeGreaterThan(0);
  }, 120_000);

  it('survives a manual CLUSTER FAILOVER', async () => {
    const books = await booksOnEveryMaster(cluster, prefix, 3, 'handover');
    await publishThrough(scenario(books, async () => {
      const nodes = await cluster.nodes();
      // A master that still has its replica (the kill above left one master without).
      const replica = nodes.find((n) => !n.master && !n.failed && nodes.some((m) => m.id === n.masterId && m.master && !m.failed))!;
      expect(replica, 'a master has a live replica').toBeDefined();
      await cluster.command(replica.port, 'CLUSTER', 'FAILOVER');
      await until(async () => (await cluster.masters()).some((m) => m.port === replica.port), 15_000, 'the replica is promoted');
    }));
  }, 120_000);
});
