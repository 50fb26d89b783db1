import { describe, expect, it } from 'vitest';
import { until } from '../support/wait.js';
import { booksOnEveryMaster, publishThrough, twoServersOnCluster } from './scenario.js';

/** Two server processes on a six-node cluster (three masters, three replicas), while masters fail. */
const pair = twoServersOnCluster();
const { prefix, scenario } = pair;

describe('Redis Cluster failover under load, two server processes', () => {
  it('survives kill -9 of a master: 503 with Retry-After during the election, then every watcher on the latest state', async () => {
    const books = await booksOnEveryMaster(pair.cluster, prefix, 3, 'killed');
    const load = await publishThrough(
      scenario(books, async () => {
        const masters = await pair.cluster.masters();
        expect(masters).toHaveLength(3);
        await pair.cluster.kill(masters[0]!.port);
      }),
    );
    expect(load.unavailable, 'publishes refused while the master was down').toBeGreaterThan(0);
  }, 120_000);

  it('survives a manual CLUSTER FAILOVER', async () => {
    const books = await booksOnEveryMaster(pair.cluster, prefix, 3, 'handover');
    await publishThrough(scenario(books, async () => {
      const nodes = await pair.cluster.nodes();
      // A master that still has its replica (the kill above left one master without).
      const replica = nodes.find((n) => !n.master && !n.failed && nodes.some((m) => m.id === n.masterId && m.master && !m.failed))!;
      expect(replica, 'a master has a live replica').toBeDefined();
      await pair.cluster.command(replica.port, 'CLUSTER', 'FAILOVER');
      await until(async () => (await pair.cluster.masters()).some((m) => m.port === replica.port), 15_000, 'the replica is promoted');
    }));
  }, 120_000);
});
