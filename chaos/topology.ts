import { readFileSync } from 'node:fs';
import { Cluster, Redis } from 'ioredis';
import postgres from 'postgres';
import { clusterKeys } from '../src/broker/cluster-keys.js';
import { redisKeys } from '../src/broker/keys.js';
import type { RedisKeys } from '../src/broker/keys.js';
import { createTestDatabase } from '../test/support/backends.js';
import type { TestDatabase } from '../test/support/backends.js';
import { FaultProxy } from '../test/support/fault-proxy.js';
import { freePort } from '../test/support/ports.js';
import { RedisCluster } from '../test/support/redis-cluster.js';
import { RedisProcess } from '../test/support/redis-process.js';
import { ServerProcess } from '../test/support/server-process.js';
import { DelayProxy } from './delay-proxy.js';

export type Mode = 'single' | 'cluster';

/** How long a server may take to answer /healthz after its start, on a machine shared with other work. */
const START_MS = 120_000;

/**
 * Every server process a campaign started: killed when this process exits, however it ends (a
 * test runner's worker torn down, a crash), so that none outlives the campaign.
 */
const LIVE_PIDS = new Set<number>();
process.once('exit', () => {
  for (const pid of LIVE_PIDS) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A cluster, tried again on a loaded machine where a node may take more than its 10 s to answer (a failed try stops its nodes). */
async function startCluster(attempts = 3): Promise<RedisCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await RedisCluster.start();
    } catch (error) {
      if (attempt >= attempts) throw error;
    }
  }
}

/** One server instance: a fixed port, so that clients reconnect to it across restarts. */
export class Instance {
  readonly index: number;
  readonly port: number;
  readonly url: string;
  /** The delay proxies between this instance and its backends (its "network"). */
  readonly links: DelayProxy[];
  readonly #env: Record<string, string>;
  /** Every process this instance ran, for their logs. */
  readonly processes: ServerProcess[] = [];
  current: ServerProcess | null = null;
  /** Set while the nemesis kills it: an exit otherwise is the server's own doing. */
  killed = false;
  /** Whether its own exit was recorded already. */
  exitSeen = false;

  constructor(index: number, port: number, env: Record<string, string>, links: DelayProxy[]) {
    this.index = index;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.#env = env;
    this.links = links;
  }

  /** Starts the instance; a loaded machine may take long to load the TypeScript sources. */
  async start(): Promise<void> {
    this.current = await ServerProcess.start(this.#env, this.port, START_MS);
    this.killed = false;
    this.exitSeen = false;
    this.processes.push(this.current);
    LIVE_PIDS.add(this.current.pid);
  }

  /** True once, when the process exited without being killed (a crash, or an exit of its own). */
  exitedByItself(): boolean {
    if (this.killed || this.exitSeen || !this.current || this.current.running) return false;
    this.exitSeen = true;
    return true;
  }

  /** Resident memory of the running process, from /proc. */
  rssMb(): number | null {
    if (!this.current?.running) return null;
    try {
      const status = readFileSync(`/proc/${this.current.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      return Math.round(kb / 1024);
    } catch {
      return null;
    }
  }

  async kill(signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    this.killed = true;
    await this.current?.stop(signal, 30_000);
  }
}

/**
 * The backends and the three server instances of one campaign mode: a Redis of its own (or a
 * six-node cluster), a fresh Postgres database behind a fault proxy, a delay proxy per instance
 * and backend. Everything is started by `start` and stopped by `stop`.
 */
export class Topology {
  readonly mode: Mode;
  readonly instances: Instance[] = [];
  readonly prefix = 'chaos:';
  readonly keys: RedisKeys;
  redis: RedisProcess | null = null;
  /** Between every instance and Redis (one Redis only: a cluster's clients find its nodes themselves). */
  redisFault: FaultProxy | null = null;
  cluster: RedisCluster | null = null;
  database!: TestDatabase;
  postgresFault!: FaultProxy;
  readonly #proxies: Array<DelayProxy | FaultProxy> = [];

  private constructor(mode: Mode) {
    this.mode = mode;
    this.keys = mode === 'cluster' ? clusterKeys(this.prefix) : redisKeys(this.prefix);
  }

  static async start(mode: Mode, servers: number, env: Record<string, string>): Promise<Topology> {
    const topology = new Topology(mode);
    try {
      await topology.#start(servers, env);
      return topology;
    } catch (error) {
      await topology.stop();
      throw error;
    }
  }

  async #start(servers: number, env: Record<string, string>): Promise<void> {
    const [database] = await Promise.all([
      createTestDatabase(),
      this.mode === 'cluster'
        ? startCluster().then((c) => void (this.cluster = c))
        : RedisProcess.start(null, ['--maxmemory-policy', 'noeviction']).then((r) => void (this.redis = r)),
    ]);
    this.database = database;
    this.postgresFault = await FaultProxy.start(database.url);
    this.#proxies.push(this.postgresFault);
    if (this.redis) {
      this.redisFault = await FaultProxy.start(this.redis.url);
      this.#proxies.push(this.redisFault);
    }
    if (this.cluster) for (const port of this.cluster.ports) await this.cluster.command(port, 'CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    for (let i = 0; i < servers; i++) {
      const links: DelayProxy[] = [];
      const link = async (port: number) => {
        const proxy = await DelayProxy.start({ host: '127.0.0.1', port });
        links.push(proxy);
        this.#proxies.push(proxy);
        return proxy;
      };
      const pg = await link(this.postgresFault.port);
      const backends: Record<string, string> = { DATABASE_URL: pg.url(database.url), REDIS_KEY_PREFIX: this.prefix };
      if (this.redisFault) backends.REDIS_URL = (await link(this.redisFault.port)).url(this.redis!.url);
      else backends.REDIS_CLUSTER_NODES = this.cluster!.seeds;
      this.instances.push(new Instance(i, await freePort(), { ...env, ...backends }, links));
    }
    // The first applies the migrations; the others start together.
    await this.instances[0]!.start();
    await Promise.all(this.instances.slice(1).map((instance) => instance.start()));
  }

  /** A client of the campaign's Redis as an outside worker holds one: direct, not through the proxies. */
  redisClient(): Redis | Cluster {
    const options = { maxRetriesPerRequest: 1, commandTimeout: 2_000, enableOfflineQueue: true };
    const client = this.cluster
      ? new Cluster(this.cluster.ports.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: options, clusterRetryStrategy: () => 200 })
      : new Redis({ host: '127.0.0.1', port: this.redis!.port, ...options, retryStrategy: () => 200 });
    client.on('error', () => {});
    return client;
  }

  /** One command on one Redis node, on a connection of its own. */
  async command(port: number, ...args: string[]): Promise<unknown> {
    if (this.cluster) return this.cluster.command(port, ...args);
    const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await client.connect();
      return await client.call(args[0]!, ...args.slice(1));
    } finally {
      client.disconnect();
    }
  }

  /** A connection to the database, direct, as the campaign's checker and outside worker use. */
  sql(): postgres.Sql {
    return postgres(this.database.url, { max: 2, onnotice: () => {}, connect_timeout: 5, idle_timeout: 5 });
  }

  /** The commit script's keys and arguments for one book (docs/protocol.md), one Redis or cluster. */
  commitCall(bookId: string, expected: string, json: string, ttlSeconds: number): { keys: string[]; args: string[] } {
    const partition = this.keys.partitionOf(bookId);
    if (this.mode === 'single') return { keys: [this.keys.state(bookId), this.keys.dirty(partition)], args: [expected, json, String(ttlSeconds), this.keys.channel(bookId), bookId] };
    return {
      keys: [this.keys.state(bookId), this.keys.dirty(partition), this.keys.fence(bookId)],
      args: [expected, json, String(ttlSeconds), this.keys.channel(bookId), bookId, '', 'SPUBLISH', this.keys.feed(partition) ?? ''],
    };
  }

  async stop(): Promise<void> {
    for (const instance of this.instances) {
      instance.current?.signal('SIGCONT');
      await instance.current?.stop('SIGKILL').catch(() => null);
    }
    for (const proxy of this.#proxies) await proxy.close().catch(() => undefined);
    await Promise.allSettled([this.redis?.stop(), this.cluster?.stop(), this.database?.drop()]);
  }
}
