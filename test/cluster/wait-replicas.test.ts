import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterKeys } from '../../src/broker/cluster-keys.js';
import type { BookProgress } from '../../src/progress/schema.js';
import { createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { RedisCluster } from '../support/redis-cluster.js';
import { ServerProcess } from '../support/server-process.js';
import { pace, until } from '../support/wait.js';
import { publish } from '../server/http.js';
import { heldStates } from './scenario.js';

/**
 * REDIS_WAIT_REPLICAS=1 on a six-node cluster: a publish is answered 200 only once the master's
 * replica has the commit, so a kill -9 of the master loses no acknowledged publish. With the
 * shard left without a replica, publishes there are refused 503 not_replicated.
 */
let cluster: RedisCluster;
let database: TestDatabase;
let server: ServerProcess;
const prefix = uniquePrefix();

beforeAll(async () => {
  [cluster, database] = await Promise.all([RedisCluster.start(), createTestDatabase()]);
  server = await ServerProcess.start({ REDIS_CLUSTER_NODES: cluster.seeds, REDIS_KEY_PREFIX: prefix, DATABASE_URL: database.url, MAX_GENERATIONS: '0', REDIS_WAIT_REPLICAS: '1', BACKEND_TIMEOUT_MS: '1000' });
}, 90_000);

afterAll(async () => {
  await server?.stop('SIGKILL');
  await Promise.allSettled([cluster?.stop(), database?.drop()]);
});

/** Every answer of a publish loop, in the order they came: acknowledged versions and refusal codes. */
class Publisher {
  readonly acked = new Map<string, number[]>();
  readonly refused = new Map<string, number>();
  readonly failures: string[] = [];
  #running = true;
  readonly #loops: Array<Promise<void>>;

  constructor(books: string[]) {
    this.#loops = books.map((id) => this.#loop(id));
  }

  async #loop(id: string): Promise<void> {
    for (let n = 0; this.#running; n++) {
      try {
        const res = await publish(server.url, id, { status: 'GENERATING', generationStep: 'CHAPTERS', message: `update ${n}` });
        const body = (await res.json()) as { data?: BookProgress; error?: { code: string } };
        if (res.status === 200) this.acked.set(id, [...(this.acked.get(id) ?? []), body.data!.version]);
        else if (res.status === 503 && res.headers.get('retry-after') !== null) this.refused.set(body.error!.code, (this.refused.get(body.error!.code) ?? 0) + 1);
        else this.failures.push(`${id}: ${res.status} ${JSON.stringify(body)}`);
      } catch (error) {
        this.failures.push(`${id}: ${(error as Error).message}`);
      }
      await pace(10);
    }
  }

  latest(id: string): number {
    return this.acked.get(id)?.at(-1) ?? 0;
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }
}

describe('REDIS_WAIT_REPLICAS=1 on a Redis Cluster', () => {
  it('loses no acknowledged publish across kill -9 of a master; 503 not_replicated while the shard has no replica', async () => {
    const keys = clusterKeys(prefix);
    const [victim] = await cluster.masters();
    const replica = (await cluster.nodes()).find((n) => n.masterId === victim!.id)!;
    expect(replica, 'the master has a replica').toBeDefined();
    // Books whose slots the victim serves.
    const books: string[] = [];
    for (let i = 0; books.length < 3; i++) {
      const slot = Number(await cluster.command(victim!.port, 'CLUSTER', 'KEYSLOT', keys.state(`acked-${i}`)));
      if (victim!.slots.some(([from, to]) => slot >= from && slot <= to)) books.push(`acked-${i}`);
    }

    const load = new Publisher(books);
    await until(() => books.every((id) => load.latest(id) >= 20), 30_000, 'every book past version 20');
    await cluster.kill(victim!.port);
    await until(async () => (await cluster.masters()).some((m) => m.port === replica.port), 20_000, 'the replica is promoted');
    // The promoted master has no replica now: WAIT 1 cannot be met, publishes are refused, not acknowledged.
    await until(() => (load.refused.get('not_replicated') ?? 0) > 0, 20_000, 'a publish refused not_replicated');
    const beforeRestart = new Map(books.map((id) => [id, load.latest(id)]));
    await cluster.restart(victim!.port);
    await until(() => books.every((id) => load.latest(id) >= beforeRestart.get(id)! + 10), 30_000, 'publishes acknowledged again once the old master is a replica');
    await load.stop();

    expect(load.failures).toEqual([]);
    for (const id of books) {
      const versions = load.acked.get(id)!;
      // A lost acknowledged commit would show as a version acknowledged twice (or lower): numbering goes on from what survived.
      const backwards = versions.filter((v, i) => i > 0 && v <= versions[i - 1]!);
      expect(backwards, `acknowledged versions of ${id} only go up`).toEqual([]);
    }
    const held = await heldStates(cluster, prefix, books);
    for (const id of books) expect(held.get(id)!.version, `the last acknowledged version of ${id} is held`).toBeGreaterThanOrEqual(load.latest(id));
  }, 120_000);
});
