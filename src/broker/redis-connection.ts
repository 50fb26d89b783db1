import { Cluster, Redis } from 'ioredis';
import type { ClusterOptions, RedisOptions } from 'ioredis';
import type { RedisTarget } from '../config.js';

const COMMAND_TIMEOUT_MS = 2_000;
const MAX_RECONNECT_DELAY_MS = 2_000;
/** How often a cluster client re-reads the slot map, so a migrated slot is noticed even without a MOVED. */
const SLOTS_REFRESH_MS = 2_000;

/** Connection options shared by every connection: fail fast while Redis is down, reconnect forever. */
export const REDIS_CONNECTION_OPTIONS: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  commandTimeout: COMMAND_TIMEOUT_MS,
  autoResubscribe: false,
  retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
};

/**
 * The clients of one broker. On one Redis and on Sentinel: a command connection and a
 * subscriber connection. On a cluster both are one `Cluster`: a command connection per node it
 * talks to, and one classic subscriber (classic pub/sub) or, through it, the broker's own
 * subscriber per master (sharded pub/sub).
 */
export interface RedisClients {
  commands: Redis | Cluster;
  subscriber: Redis | Cluster;
}

/** Opens the broker's connections to `target`; `name` shows in CLIENT LIST. */
export function openRedis(target: RedisTarget, name: string): RedisClients {
  const commands = openCommands(target, name);
  // A cluster's subscribers hang off the Cluster client (classic) or are opened per master by the broker (sharded).
  return { commands, subscriber: target.kind === 'cluster' ? commands : openCommands(target, `${name}-sub`) };
}

/** One command client for `target`: a connection, a Sentinel-followed connection, or a Cluster. */
export function openCommands(target: RedisTarget, name: string): Redis | Cluster {
  switch (target.kind) {
    case 'single':
      return new Redis(target.url, { ...REDIS_CONNECTION_OPTIONS, connectionName: name });
    case 'sentinel':
      return new Redis({
        ...REDIS_CONNECTION_OPTIONS,
        connectionName: name,
        sentinels: target.sentinels.map(({ host, port }) => ({ host, port })),
        name: target.masterName,
        ...(target.password === null ? {} : { password: target.password }),
        ...(target.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
        // A promotion drops our connections to the old master (Sentinel kills its clients, or it
        // died): ioredis then asks the Sentinels again. (ioredis's failoverDetector left connections
        // closed for good after a kill -9 in our tests.)
      });
    case 'cluster':
      return new Cluster(
        target.nodes.map(({ host, port }) => ({ host, port })),
        clusterOptions(target, name),
      );
  }
}

export function clusterOptions(target: Extract<RedisTarget, { kind: 'cluster' }>, name: string): ClusterOptions {
  const { enableOfflineQueue: _queue, retryStrategy: _retry, ...nodeOptions } = REDIS_CONNECTION_OPTIONS;
  return {
    enableOfflineQueue: false,
    // Sharded subscribers are the broker's own (shard-subscribers.ts), one per master.
    shardedSubscribers: false,
    slotsRefreshInterval: SLOTS_REFRESH_MS,
    // The slot map can be a moment behind a failover or migration: a few short retries ride it out,
    // then the caller gets BrokerUnavailableError (HTTP 503) instead of waiting.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 100,
    maxRedirections: 8,
    clusterRetryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
    // As on one Redis, each command goes out at once: auto-pipelining (one batch per tick) measured
    // no better in the cluster benchmark and adds a tick to every commit.
    enableAutoPipelining: false,
    redisOptions: {
      ...nodeOptions,
      connectionName: name,
      ...(target.password === null ? {} : { password: target.password }),
      ...(target.tls ? { tls: {} } : {}),
    },
    // Managed clusters announce names their certificates carry; keep them for TLS.
    ...(target.tls ? { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) } : {}),
  };
}

/** Where `target` points, without secrets, for logs. */
export function describeRedis(target: RedisTarget): string {
  switch (target.kind) {
    case 'single': {
      const url = new URL(target.url);
      if (url.password) url.password = '***';
      return url.toString();
    }
    case 'cluster':
      return `cluster ${target.nodes.map(({ host, port }) => `${host}:${port}`).join(',')} (${target.pubsub} pub/sub)`;
    case 'sentinel':
      return `sentinel master "${target.masterName}" via ${target.sentinels.map(({ host, port }) => `${host}:${port}`).join(',')}`;
  }
}
