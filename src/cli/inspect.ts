/**
 * Prints where a book lives in Redis and what is held there, in any Redis mode:
 *   npm run inspect -- <bookId>
 * Reads the same variables as the server (REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS, REDIS_KEY_PREFIX).
 */
import { Cluster } from 'ioredis';
import type { Redis } from 'ioredis';
import { loadConfig } from '../config.js';
import { clusterKeys, slotOf } from '../broker/cluster-keys.js';
import { redisKeys } from '../broker/keys.js';
import { describeRedis, openCommands } from '../broker/redis-connection.js';

function fail(message: string): never {
  process.stderr.write(`inspect: ${message}\n`);
  process.exit(2);
}

const bookId = process.argv[2];
if (bookId === undefined || bookId === '' || process.argv.length > 3) fail('usage: npm run inspect -- <bookId>');

let config;
try {
  config = loadConfig(process.env);
} catch (error) {
  fail((error as Error).message);
}
const target = config.redisTarget;
if (target === null) fail('no Redis configured (REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS): the in-memory broker keeps states inside the server process');

const keys = target.kind === 'cluster' ? clusterKeys(config.redisKeyPrefix) : redisKeys(config.redisKeyPrefix);
const partition = keys.partitionOf(bookId);
const key = keys.state(bookId);
const client = openCommands(target, 'booksai-inspect');
client.on('error', () => {
  // Reported below when a command fails.
});

/** host:port of the node that answers for `key`. */
async function nodeOf(): Promise<string> {
  if (client instanceof Cluster) {
    const owner = client.slots[slotOf(key)]?.[0];
    return owner ?? 'unknown (the slot is not served)';
  }
  const redis = client as Redis;
  const role = (await redis.call('ROLE')) as unknown[];
  return `${redis.stream?.remoteAddress ?? '?'}:${redis.stream?.remotePort ?? '?'} (${String(role[0])})`;
}

try {
  if (client.status !== 'ready') await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${describeRedis(target)} did not answer within 5 s`)), 5_000);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  const [raw, ttl, dirty] = await Promise.all([client.get(key), client.ttl(key), client.sismember(keys.dirty(partition), bookId)]);
  const lines = [
    `mode:      ${target.kind} (${describeRedis(target)})`,
    `key:       ${key}`,
    `slot:      ${target.kind === 'cluster' ? `${slotOf(key)} (partition ${partition} of ${keys.partitions})` : 'none (not a cluster)'}`,
    `node:      ${await nodeOf()}`,
    `channel:   ${keys.channel(bookId)}`,
    `dirty:     ${dirty === 1 ? `yes, in ${keys.dirty(partition)} (not snapshotted yet)` : 'no'}`,
    `ttl:       ${ttl >= 0 ? `${ttl} s` : 'none'}`,
    `state:     ${raw === null ? 'none held (never published, or expired)' : JSON.stringify(JSON.parse(raw), null, 2).replaceAll('\n', '\n           ')}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} catch (error) {
  fail((error as Error).message);
} finally {
  client.disconnect();
}
