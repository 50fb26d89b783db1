import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, expect } from 'vitest';
import { Cluster } from 'ioredis';
import { WebSocket } from 'ws';
import { clusterKeys } from '../../src/broker/cluster-keys.js';
import type { BookProgress } from '../../src/progress/schema.js';
import { createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { Watch } from '../support/events.js';
import { RedisCluster } from '../support/redis-cluster.js';
import { ServerProcess } from '../support/server-process.js';
import { pace, until, withTimeout } from '../support/wait.js';
import { progressUrl } from '../server/http.js';

/** `perMaster` book ids on each master of `cluster` under `prefix`, so a failover anywhere hits some. */
export async function booksOnEveryMaster(cluster: RedisCluster, prefix: string, perMaster: number, label: string): Promise<string[]> {
  const keys = clusterKeys(prefix);
  const masters = await cluster.masters();
  const byMaster = new Map<number, string[]>(masters.map((m) => [m.port, []]));
  for (let i = 0; [...byMaster.values()].some((books) => books.length < perMaster); i++) {
    const id = `${label}-${i}`;
    const slot = Number(await cluster.command(masters[0]!.port, 'CLUSTER', 'KEYSLOT', keys.state(id)));
    const books = byMaster.get(masters.find((m) => m.slots.some(([from, to]) => slot >= from && slot <= to))!.port)!;
    if (books.length < perMaster) books.push(id);
  }
  return [...byMaster.values()].flat();
}

/**
 * Publishers over HTTP, one loop per book, alternating between servers, while Redis fails
 * over or moves slots. Keeps the newest state each book was acknowledged with, and checks that
 * every refusal is a 503 with Retry-After, answered within the timeout (no hang).
 */
export class PublishLoad {
  readonly acked = new Map<string, BookProgress>();
  unavailable = 0;
  slowestMs = 0;
  readonly failures: string[] = [];
  #running = true;
  readonly #loops: Array<Promise<void>>;

  constructor(servers: string[], books: string[], pauseMs = 20) {
    this.#loops = books.map((id, b) => this.#loop(servers, id, b, pauseMs));
  }

  async #loop(servers: string[], id: string, offset: number, pauseMs: number): Promise<void> {
    for (let n = 0; this.#running; n++) {
      const started = Date.now();
      try {
        const res = await fetch(progressUrl(servers[(n + offset) % servers.length]!, id), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ status: 'GENERATING', generationStep: 'CHAPTERS', message: `update ${n}` }),
          signal: AbortSignal.timeout(8_000),
        });
        const body = (await res.json()) as { data?: BookProgress; error?: { code: string } };
        if (res.status === 200) {
          const held = this.acked.get(id);
          if (!held || body.data!.version >= held.version) this.acked.set(id, body.data!);
        } else if (res.status === 503 && res.headers.get('retry-after') !== null) {
          this.unavailable++;
        } else {
          this.failures.push(`${id}: ${res.status} ${JSON.stringify(body)}`);
        }
      } catch (error) {
        this.failures.push(`${id}: ${(error as Error).message}`);
      }
      this.slowestMs = Math.max(this.slowestMs, Date.now() - started);
      await pace(pauseMs);
    }
  }

  /** Publishes a little longer, then stops and waits for every loop. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }
}

/** Every kind of watcher on one server: a stream per book, one multiplexed stream, the every-book stream, a WebSocket. */
export class Watchers {
  readonly #watches: Array<{ name: string; watch: Watch }> = [];
  readonly #sockets: Array<{ name: string; ws: WebSocket; states: BookProgress[] }> = [];
  readonly #errors: string[] = [];

  static async open(servers: string[], books: string[]): Promise<Watchers> {
    const watchers = new Watchers();
    for (const [s, url] of servers.entries()) {
      for (const id of books) watchers.#watches.push({ name: `server ${s} stream of ${id}`, watch: new Watch(`${progressUrl(url, id)}/stream`) });
      watchers.#watches.push({ name: `server ${s} multiplexed`, watch: new Watch(`${url}/api/ai/stream?books=${books.join(',')}`) });
      const everyBook = new Watch(`${url}/api/ai/stream`);
      everyBook.source.addEventListener('error', (e) => watchers.#errors.push(`${(e as { code?: number }).code} ${(e as { message?: string }).message}`));
      watchers.#watches.push({ name: `server ${s} every-book`, watch: everyBook });
      const ws = new WebSocket(`${url.replace('http', 'ws')}/api/ai/ws`);
      const states: BookProgress[] = [];
      ws.on('message', (data) => {
        const message = JSON.parse(data.toString()) as { type: string; data?: BookProgress };
        if (message.type === 'progress') states.push(message.data!);
      });
      await withTimeout(once(ws, 'open'), 5_000, 'the WebSocket to open');
      ws.send(JSON.stringify({ type: 'subscribe', books }));
      watchers.#sockets.push({ name: `server ${s} websocket`, ws, states });
    }
    await Promise.all(watchers.#watches.map(({ watch }) => watch.opened(10_000)));
    return watchers;
  }

  #all(): Array<{ name: string; states: BookProgress[]; status: () => string }> {
    return [
      ...this.#watches.map(({ name, watch }) => ({ name, states: watch.states, status: () => `readyState ${watch.source.readyState}, ${watch.errors} errors ${this.#errors.join('|')}` })),
      ...this.#sockets.map(({ name, ws, states }) => ({ name, states, status: () => `readyState ${ws.readyState}` })),
    ];
  }

  /** Every watcher ends on each book's latest state, and never saw a version go backwards. */
  async expectConverged(latest: Map<string, BookProgress>, ms = 20_000): Promise<void> {
    for (const { name, states, status } of this.#all()) {
      const books = name.includes(' stream of ') ? [name.slice(name.indexOf(' stream of ') + 11)] : [...latest.keys()];
      // After a gap the every-book stream resends the book list, which may be older than what was
      // shown; its clients (the dashboard) keep the newest per book, and so does this check.
      const everyBook = name.endsWith('every-book');
      const lastOf = (id: string) =>
        everyBook
          ? states.filter((s) => s.bookId === id).reduce<BookProgress | undefined>((shown, s) => (shown && shown.version >= s.version ? shown : s), undefined)
          : states.filter((s) => s.bookId === id).at(-1);
      await until(() => books.every((id) => lastOf(id)?.version === latest.get(id)!.version), ms, `${name} to reach the latest versions`).catch((error: Error) => {
        const behind = books.filter((id) => lastOf(id)?.version !== latest.get(id)!.version).map((id) => `${id}: ${lastOf(id)?.version} of ${latest.get(id)!.version}`);
        throw new Error(`${error.message} (${behind.join(', ')}; ${status()})`);
      });
      for (const id of books) {
        expect(lastOf(id), `${name}: the latest state of ${id}`).toEqual(latest.get(id));
        const versions = states.filter((s) => s.bookId === id).map((s) => s.version);
        if (!everyBook) expect(versions.every((v, i) => i === 0 || v > versions[i - 1]!), `${name}: versions of ${id} only go up: ${versions.join(',')}`).toBe(true);
      }
    }
  }

  close(): void {
    for (const { watch } of this.#watches) watch.close();
    for (const { ws } of this.#sockets) ws.terminate();
  }
}

/** The latest state of each book held in the cluster, read directly from its master. */
export async function heldStates(cluster: RedisCluster, prefix: string, books: string[]): Promise<Map<string, BookProgress>> {
  const keys = clusterKeys(prefix);
  const client = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
  try {
    const held = new Map<string, BookProgress>();
    for (const id of books) held.set(id, JSON.parse((await client.get(keys.state(id)))!) as BookProgress);
    return held;
  } finally {
    client.disconnect();
  }
}

/** Waits until Postgres holds each book's latest version (the snapshots caught up). */
export async function expectSnapshotted(databaseUrl: string, latest: Map<string, BookProgress>, ms = 20_000): Promise<void> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    await until(
      async () => {
        const rows = await sql<Array<{ id: string; version: number }>>`select id, version from books where id in ${sql([...latest.keys()])}`;
        const saved = new Map(rows.map((r) => [r.id, r.version]));
        return [...latest].every(([id, state]) => saved.get(id) === state.version);
      },
      ms,
      'every book\'s latest version is in Postgres',
    );
  } finally {
    await sql.end();
  }
}

export interface Scenario {
  servers: string[];
  books: string[];
  /** The fault, while publishers run. */
  fail(): Promise<void>;
  /** Resolves once Redis serves every book again. */
  recovered(): Promise<void>;
  /** The state held in Redis per book, read directly. */
  held(books: string[]): Promise<Map<string, BookProgress>>;
  databaseUrl: string;
}

/**
 * Publishes and watches every book through every server while `fail` runs, publishes on after
 * recovery, then checks: no publish failed other than 503 + Retry-After, none hung; Redis holds
 * each book's last acknowledged state; every watcher ends on it, versions only going up; Postgres
 * catches up with it.
 */
export async function publishThrough(scenario: Scenario): Promise<PublishLoad> {
  const { servers, books } = scenario;
  const watchers = await Watchers.open(servers, books);
  try {
    const load = new PublishLoad(servers, books);
    const versionsPast = (n: number) => until(() => books.every((id) => (load.acked.get(id)?.version ?? 0) >= n), 30_000, `every book past version ${n}`);
    await versionsPast(5);
    await scenario.fail();
    await scenario.recovered();
    // Publishing goes on after the fault, on every book.
    const after = Math.max(...[...load.acked.values()].map((s) => s.version));
    await versionsPast(after + 5);
    await load.stop();

    expect(load.failures).toEqual([]);
    expect(load.slowestMs, 'no publish waited for the fault to pass').toBeLessThan(8_000);
    const latest = await scenario.held(books);
    for (const id of books) expect(latest.get(id), `the last acknowledged state of ${id} is held`).toEqual(load.acked.get(id));
    await watchers.expectConverged(latest);
    await expectSnapshotted(scenario.databaseUrl, latest);
    return load;
  } finally {
    watchers.close();
  }
}

/** With CLUSTER_TEST_LOGS=<dir>, the servers' output is kept there (debug level), for a failure's story. */
export const SERVER_LOG_ENV: Record<string, string> = process.env.CLUSTER_TEST_LOGS ? { LOG_LEVEL: 'debug', DEBUG: process.env.DEBUG ?? '' } : {};

export function keepLogs(outputs: string[]): void {
  const dir = process.env.CLUSTER_TEST_LOGS;
  if (dir) outputs.forEach((output, i) => writeFileSync(join(dir, `server-${i}.log`), output));
}

/** The servers, cluster and database a file's scenarios run on; set once its beforeAll ran. */
export interface ClusterPair {
  readonly cluster: RedisCluster;
  readonly prefix: string;
  readonly servers: readonly ServerProcess[];
  /** Publishing and watching `books` through both servers while `fail` runs, on this cluster. */
  scenario(books: string[], fail: () => Promise<void>): Scenario;
}

/**
 * Two server processes on a six-node cluster (three masters, three replicas) and a fresh
 * database, started before the file's first test and stopped after its last.
 */
export function twoServersOnCluster(): ClusterPair {
  let cluster: RedisCluster;
  let database: TestDatabase;
  const servers: ServerProcess[] = [];
  const prefix = uniquePrefix();

  beforeAll(async () => {
    [cluster, database] = await Promise.all([RedisCluster.start(), createTestDatabase()]);
    const env = { REDIS_CLUSTER_NODES: cluster.seeds, REDIS_KEY_PREFIX: prefix, DATABASE_URL: database.url, SNAPSHOT_INTERVAL_MS: '1000', MAX_GENERATIONS: '0', ...SERVER_LOG_ENV };
    // One after the other: the first applies the migrations.
    servers.push(await ServerProcess.start(env));
    servers.push(await ServerProcess.start(env));
  }, 90_000);

  afterAll(async () => {
    keepLogs(servers.map((s) => s.output));
    await Promise.allSettled(servers.map((s) => s.stop('SIGKILL')));
    await Promise.allSettled([cluster?.stop(), database?.drop()]);
  });

  return {
    get cluster() {
      return cluster;
    },
    prefix,
    servers,
    scenario: (books, fail) => ({
      servers: servers.map((s) => s.url),
      books,
      fail,
      recovered: () => cluster.healthy(),
      held: (ids) => heldStates(cluster, prefix, ids),
      databaseUrl: database.url,
    }),
  };
}
