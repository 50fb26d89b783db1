import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';
import { until } from './wait.js';

const run = promisify(execFile);

/** A redis-server (or Sentinel) started by a test, killed by pid. */
class Server {
  readonly port: number;
  readonly #child: ChildProcess;
  readonly #exit: Promise<unknown>;

  constructor(port: number, args: string[]) {
    this.port = port;
    this.#child = spawn('redis-server', args, { stdio: 'ignore' });
    this.#exit = once(this.#child, 'exit');
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    this.#child.kill('SIGKILL');
    await this.#exit;
  }
}

/** A connection to one node that gives up at once instead of reconnecting. */
export function nodeClient(port: number): Redis {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  client.on('error', () => {});
  return client;
}

async function answers(port: number): Promise<boolean> {
  const client = nodeClient(port);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** One line of CLUSTER NODES. */
export interface ClusterNode {
  id: string;
  port: number;
  master: boolean;
  failed: boolean;
  /** The master a replica follows ('-' for a master). */
  masterId: string;
  /** Slot ranges [from, to] served (masters). */
  slots: Array<[number, number]>;
}

/**
 * Six `redis-server --cluster-enabled yes` on free ports: three masters with a replica each,
 * a 1 s node timeout so a failover takes a few seconds. Never the shared 6379.
 */
export class RedisCluster {
  readonly #dir: string;
  readonly #servers = new Map<number, Server>();
  #replicas = 1;

  private constructor(dir: string) {
    this.#dir = dir;
  }

  /** `nodes` servers, `replicas` per master (six and one: three masters with a replica each). */
  static async start(nodes = 6, replicas = 1): Promise<RedisCluster> {
    const cluster = new RedisCluster(mkdtempSync(join(tmpdir(), 'booksai-cluster-')));
    cluster.#replicas = replicas;
    try {
      const ports: number[] = [];
      for (let i = 0; i < nodes; i++) ports.push(await freePort());
      for (const port of ports) cluster.#spawn(port);
      for (const port of ports) await until(() => answers(port), 10_000, `cluster node ${port} answers`);
      await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 30_000 });
      // A fresh cluster agrees on its slots within seconds; test files starting clusters side by side on few cores take longer.
      await cluster.healthy(55_000);
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  /** `host:port,…` of every node, for REDIS_CLUSTER_NODES. */
  get seeds(): string {
    return [...this.#servers.keys()].map((port) => `127.0.0.1:${port}`).join(',');
  }

  get ports(): number[] {
    return [...this.#servers.keys()];
  }

  #spawn(port: number): void {
    this.#servers.set(
      port,
      new Server(port, [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(this.#dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', '1000',
        '--cluster-replica-validity-factor', '0',
        '--dir', this.#dir,
        '--save', '',
        '--appendonly', 'no',
        '--daemonize', 'no',
      ]),
    );
  }

  /** CLUSTER NODES as seen by a running node. */
  async nodes(): Promise<ClusterNode[]> {
    for (const [port, server] of this.#servers) {
      if (!server.running) continue;
      const client = nodeClient(port);
      try {
        await client.connect();
        const text = (await client.call('CLUSTER', 'NODES')) as string;
        return text
          .trim()
          .split('\n')
          .map((line) => {
            const [id, address, flags, masterId, , , , , ...slots] = line.split(' ');
            return {
              id: id as string,
              port: Number((address as string).split('@')[0]!.split(':')[1]),
              master: (flags as string).includes('master'),
              failed: /fail/.test(flags as string),
              masterId: masterId as string,
              slots: slots
                .filter((s) => !s.startsWith('['))
                .map((s) => {
                  const [from, to] = s.split('-').map(Number);
                  return [from as number, (to ?? from) as number];
                }),
            };
          });
      } catch {
        // Try the next node.
      } finally {
        client.disconnect();
      }
    }
    throw new Error('no cluster node answers');
  }

  /** The masters serving slots, by port. */
  async masters(): Promise<ClusterNode[]> {
    return (await this.nodes()).filter((n) => n.master && !n.failed && n.slots.length > 0);
  }

  /** The port of the master serving `slot`. */
  async ownerOf(slot: number): Promise<number> {
    const owner = (await this.masters()).find((m) => m.slots.some(([from, to]) => slot >= from && slot <= to));
    if (!owner) throw new Error(`no master serves slot ${slot}`);
    return owner.port;
  }

  /** Resolves once every running node reports cluster_state:ok and the masters (three of six) serve every slot. */
  async healthy(ms = 30_000): Promise<void> {
    await until(
      async () => {
        for (const [port, server] of this.#servers) {
          if (!server.running) continue;
          const client = nodeClient(port);
          try {
            await client.connect();
            const info = (await client.call('CLUSTER', 'INFO')) as string;
            if (!info.includes('cluster_state:ok')) return false;
          } catch {
            return false;
          } finally {
            client.disconnect();
          }
        }
        const masters = await this.masters();
        const served = masters.reduce((sum, m) => sum + m.slots.reduce((s, [from, to]) => s + to - from + 1, 0), 0);
        return served === 16_384 && masters.length === this.#servers.size / (this.#replicas + 1);
      },
      ms,
      'the cluster is healthy',
    );
  }

  /**
   * Starts a killed node again on its port with its nodes.conf and no data: it rejoins the
   * cluster, as a replica of the master that took its slots over meanwhile.
   */
  async restart(port: number): Promise<void> {
    if (!this.#servers.has(port) || this.#servers.get(port)!.running) return;
    this.#spawn(port);
    await until(() => answers(port), 10_000, `cluster node ${port} answers again`);
  }

  /** kill -9 of one node. */
  async kill(port: number): Promise<void> {
    await this.#servers.get(port)?.kill();
  }

  /** A command on one node (CLUSTER FAILOVER on a replica, SETSLOT, MIGRATE). */
  async command(port: number, ...args: Array<string | number>): Promise<unknown> {
    const client = nodeClient(port);
    try {
      await client.connect();
      return await client.call(...(args.map(String) as [string, ...string[]]));
    } finally {
      client.disconnect();
    }
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#servers.values()].map((s) => s.kill()));
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** A master, its replica and three Sentinels watching it as "booksai", each on a free port. */
export class RedisSentinels {
  static readonly MASTER_NAME = 'booksai';
  readonly #dir: string;
  readonly #servers = new Map<number, Server>();
  masterPort = 0;
  replicaPort = 0;
  readonly sentinelPorts: number[] = [];

  private constructor(dir: string) {
    this.#dir = dir;
  }

  static async start(): Promise<RedisSentinels> {
    const setup = new RedisSentinels(mkdtempSync(join(tmpdir(), 'booksai-sentinel-')));
    try {
      setup.masterPort = await freePort();
      setup.replicaPort = await freePort();
      const base = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', setup.#dir];
      setup.#servers.set(setup.masterPort, new Server(setup.masterPort, ['--port', String(setup.masterPort), ...base]));
      setup.#servers.set(
        setup.replicaPort,
        new Server(setup.replicaPort, ['--port', String(setup.replicaPort), '--replicaof', '127.0.0.1', String(setup.masterPort), ...base]),
      );
      for (const port of [setup.masterPort, setup.replicaPort]) await until(() => answers(port), 10_000, `redis ${port} answers`);
      for (let i = 0; i < 3; i++) {
        const port = await freePort();
        const file = join(setup.#dir, `sentinel-${port}.conf`);
        writeFileSync(
          file,
          [
            `port ${port}`,
            'bind 127.0.0.1',
            `dir ${setup.#dir}`,
            `sentinel monitor ${RedisSentinels.MASTER_NAME} 127.0.0.1 ${setup.masterPort} 2`,
            `sentinel down-after-milliseconds ${RedisSentinels.MASTER_NAME} 1000`,
            `sentinel failover-timeout ${RedisSentinels.MASTER_NAME} 5000`,
            `sentinel parallel-syncs ${RedisSentinels.MASTER_NAME} 1`,
            '',
          ].join('\n'),
        );
        setup.#servers.set(port, new Server(port, [file, '--sentinel']));
        setup.sentinelPorts.push(port);
      }
      for (const port of setup.sentinelPorts) await until(() => answers(port), 10_000, `sentinel ${port} answers`);
      await until(async () => (await setup.replicaLinked()) && (await setup.sentinelsSeeReplica()), 20_000, 'the replica is in sync and known to the Sentinels');
      return setup;
    } catch (error) {
      await setup.stop();
      throw error;
    }
  }

  /** `host:port,…` of the Sentinels, for REDIS_SENTINELS. */
  get sentinels(): string {
    return this.sentinelPorts.map((port) => `127.0.0.1:${port}`).join(',');
  }

  /** The master's port as the Sentinels report it now. */
  async currentMaster(): Promise<number> {
    for (const port of this.sentinelPorts) {
      const client = nodeClient(port);
      try {
        await client.connect();
        const [, masterPort] = (await client.call('SENTINEL', 'get-master-addr-by-name', RedisSentinels.MASTER_NAME)) as [string, string];
        return Number(masterPort);
      } catch {
        // Try the next Sentinel.
      } finally {
        client.disconnect();
      }
    }
    throw new Error('no Sentinel answers');
  }

  async killMaster(): Promise<number> {
    const port = await this.currentMaster();
    await this.#servers.get(port)?.kill();
    return port;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#servers.values()].map((s) => s.kill()));
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async replicaLinked(): Promise<boolean> {
    const client = nodeClient(this.replicaPort);
    try {
      await client.connect();
      return (await client.info('replication')).includes('master_link_status:up');
    } catch {
      return false;
    } finally {
      client.disconnect();
    }
  }

  async sentinelsSeeReplica(): Promise<boolean> {
    for (const port of this.sentinelPorts) {
      const client = nodeClient(port);
      try {
        await client.connect();
        const replicas = (await client.call('SENTINEL', 'replicas', RedisSentinels.MASTER_NAME)) as unknown[];
        const peers = (await client.call('SENTINEL', 'sentinels', RedisSentinels.MASTER_NAME)) as unknown[];
        if (replicas.length === 0 || peers.length < 2) return false;
      } catch {
        return false;
      } finally {
        client.disconnect();
      }
    }
    return true;
  }
}
