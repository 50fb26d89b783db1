import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../../src/broker/keys.js';
import type { BookProgress } from '../../src/progress/schema.js';
import { createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { RedisSentinels, nodeClient } from '../support/redis-cluster.js';
import { ServerProcess } from '../support/server-process.js';
import { until } from '../support/wait.js';
import { keepLogs, publishThrough, SERVER_LOG_ENV } from './scenario.js';

/** Two server processes on a Sentinel-managed master and replica, while the master dies. */
let sentinels: RedisSentinels;
let database: TestDatabase;
let servers: ServerProcess[] = [];
const prefix = uniquePrefix();

beforeAll(async () => {
  [sentinels, database] = await Promise.all([RedisSentinels.start(), createTestDatabase()]);
  const env = {
    REDIS_SENTINELS: sentinels.sentinels,
    REDIS_SENTINEL_MASTER: RedisSentinels.MASTER_NAME,
    REDIS_KEY_PREFIX: prefix,
    DATABASE_URL: database.url,
    SNAPSHOT_INTERVAL_MS: '1000',
    MAX_GENERATIONS: '0',
    ...SERVER_LOG_ENV,
  };
  // One after the other: the first applies the migrations.
  servers = [await ServerProcess.start(env)];
  servers.push(await ServerProcess.start(env));
}, 90_000);

afterAll(async () => {
  keepLogs(servers.map((s) => s.output));
  await Promise.allSettled(servers.map((s) => s.stop('SIGKILL')));
  await Promise.allSettled([sentinels?.stop(), database?.drop()]);
});

async function held(port: number, books: string[]): Promise<Map<string, BookProgress>> {
  const client = nodeClient(port);
  try {
    await client.connect();
    const keys = redisKeys(prefix);
    const states = new Map<string, BookProgress>();
    // Today's key names: redis-cli GET booksai:progress:<bookId> keeps working under Sentinel.
    for (const id of books) states.set(id, JSON.parse((await client.get(keys.state(id)))!) as BookProgress);
    return states;
  } finally {
    client.disconnect();
  }
}

describe('Sentinel failover under load, two server processes', () => {
  it('follows the master Sentinel promotes after kill -9, without a restart', async () => {
    const books = Array.from({ length: 6 }, (_, i) => `sentinel-${i}`);
    const first = await sentinels.currentMaster();
    const load = await publishThrough({
      servers: servers.map((s) => s.url),
      books,
      fail: async () => {
        await sentinels.killMaster();
      },
      recovered: () => until(async () => (await sentinels.currentMaster()) !== first, 30_000, 'Sentinel promotes the replica'),
      held: async (ids) => held(await sentinels.currentMaster(), ids),
      databaseUrl: database.url,
    });
    expect(await sentinels.currentMaster()).toBe(sentinels.replicaPort);
    expect(load.unavailable, 'publishes refused while no master was elected').toBeGreaterThan(0);
    for (const server of servers) expect(server.running).toBe(true);
  }, 120_000);
});
