import { Cluster, Redis } from 'ioredis';
import type { ClusterOptions, RedisOptions } from 'ioredis';
import type { RedisTarget } from '../config.js';


const MAX_RECONNECT_DELAY_MS = 2_000;
/** TCP keepalive: finds a peer that vanished for good (a proxy or NAT in between answers it otherwise). */
const KEEPALIVE_MS = 10_000;

/**
 * Connection options shared by every connection: fail fast while Redis is down, never wait
 * longer than `timeoutMs` for a reply, reconnect forever.
 *
 * A connection that stops answering without closing (a partition that drops packets, a paused
 * Redis) is destroyed once nothing arrived for `timeoutMs` while a command waited
 * (`socketTimeout`), and replaced. Commands in flight then fail at once (`maxRetriesPerRequest: 0`)
 * and none is sent again on the new connection (`autoResendUnfulfilledCommands: false`): its
 * caller was told it failed. A command that timed out stays in its connection's queue until that
 * connection is gone, so a late reply is matched with it, never with a later command.
 */
export function redisConnectionOptions(timeoutMs: number): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    connectTimeout: timeoutMs,
    keepAlive: KEEPALIVE_MS,
    autoResubscribe: false,
    retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
  };
}

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
export function openRedis(target: RedisTarget, name: string, timeoutMs: number): RedisClients {
  const commands = openCommands(target, name, timeoutMs);
  // A cluster's subscribers hang off the Cluster client (classic) or are opened per master by the broker (sharded).
  return { commands, subscriber: target.kind === 'cluster' ? commands : openCommands(target, `${name}-sub`, timeoutMs) };
}

/** One command client for `target`: a connection, a Sentinel-followed connection, or a Cluster. */
export function openCommands(target: RedisTarget, name: string, timeoutMs: number): Redis | Cluster {
  const options = redisConnectionOptions(timeoutMs);
  switch (target.kind) {
    case 'single':
      return new Redis(target.url, { ...options, connectionName: name });
    case 'sentinel':
      return new Redis({
        ...options,
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
        clusterOptions(target, name, timeoutMs),
      );
  }
}

export function clusterOptions(target: Extract<RedisTarget, { kind: 'cluster' }>, name: string, timeoutMs: number): ClusterOptions {
  const { enableOfflineQueue: _queue, retryStrategy: _retry, ...nodeOptions } = redisConnectionOptions(timeoutMs);
  return {
    enableOfflineQueue: false,
    // Sharded subscribers are the broker's own (shard-subscribers.ts), one per master.
    shardedSubscribers: false,
    // Re-read periodically, so a migrated slot is noticed even without a MOVED.
    slotsRefreshInterval: target.slotsRefreshMs,
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
