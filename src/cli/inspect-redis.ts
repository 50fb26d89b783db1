import { Cluster } from 'ioredis';
import type { Redis } from 'ioredis';
import { clusterKeys, slotOf } from '../broker/cluster-keys.js';
import { redisKeys } from '../broker/keys.js';
import { describeRedis, openCommands } from '../broker/redis-connection.js';
import { DEFAULT_BACKEND_TIMEOUT_MS } from '../config.js';
import type { RedisTarget } from '../config.js';
import { CliError } from './args.js';

/** How long Redis may take to answer before inspect reports it unreachable. */
const REDIS_READY_MS = 5_000;

/** Indents a multi-line value under its label. */
export function block(value: unknown): string {
  return JSON.stringify(value, null, 2).replaceAll('\n', '\n           ');
}

/** Where a book lives in Redis and what is held there, in any Redis mode: key, slot, node, channel, dirty mark, TTL and state. */
export async function redisLines(target: RedisTarget, prefix: string, bookId: string): Promise<string[]> {
  const keys = target.kind === 'cluster' ? clusterKeys(prefix) : redisKeys(prefix);
  const partition = keys.partitionOf(bookId);
  const key = keys.state(bookId);
  const client = openCommands(target, 'booksai-inspect', DEFAULT_BACKEND_TIMEOUT_MS);
  client.on('error', () => {
    // Reported below when a command fails.
  });

  const nodeOf = async (): Promise<string> => {
    if (client instanceof Cluster) return client.slots[slotOf(key)]?.[0] ?? 'unknown (the slot is not served)';
    const redis = client as Redis;
    const role = (await redis.call('ROLE')) as unknown[];
    return `${redis.stream?.remoteAddress ?? '?'}:${redis.stream?.remotePort ?? '?'} (${String(role[0])})`;
  };

  try {
    if (client.status !== 'ready') {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new CliError(`${describeRedis(target)} did not answer within ${REDIS_READY_MS / 1000} s`)), REDIS_READY_MS);
        client.once('ready', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const [raw, ttl, dirty] = await Promise.all([client.get(key), client.ttl(key), client.sismember(keys.dirty(partition), bookId)]);
    return [
      `mode:      ${target.kind} (${describeRedis(target)})`,
      `key:       ${key}`,
      `slot:      ${target.kind === 'cluster' ? `${slotOf(key)} (partition ${partition} of ${keys.partitions})` : 'none (not a cluster)'}`,
      `node:      ${await nodeOf()}`,
      `channel:   ${keys.channel(bookId)}`,
      `dirty:     ${dirty === 1 ? `yes, in ${keys.dirty(partition)} (not snapshotted yet)` : 'no'}`,
      `ttl:       ${ttl >= 0 ? `${ttl} s` : 'none'}`,
      `state:     ${raw === null ? 'none held (never published, or expired)' : block(JSON.parse(raw))}`,
    ];
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`${describeRedis(target)}: ${(error as Error).message}`);
  } finally {
    client.disconnect();
  }
}
