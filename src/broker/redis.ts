import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { DEFAULT_TERMINAL_TTL_SECONDS } from '../config.js';
import type { RedisTarget } from '../config.js';
import { FaultLog } from '../fault-log.js';
import type { BookProgress } from '../progress/schema.js';
import { within } from '../within.js';
import type { CommitResult, Fence } from './commit.js';
import { BrokerNotReplicatedError, BrokerUnavailableError } from './broker.js';
import type { Broker, DirtyClaims, ProgressListener } from './broker.js';
import { evictsKeysWithoutTtl, maxmemoryPolicy } from './eviction.js';
import { COMMIT } from './scripts.js';
import { clusterKeys } from './cluster-keys.js';
import { redisKeys } from './keys.js';
import type { RedisKeys } from './keys.js';
import { RedisDirtyClaims } from './redis-claims.js';
import { decodeState, parseState } from './redis-codec.js';
import type { DecodedState } from './redis-codec.js';
import { openRedis } from './redis-connection.js';
import { redisCall } from './redis-errors.js';
import { Subscriptions } from './redis-subscriptions.js';
import { textKeys } from './redis-text.js';
import type { SharedRedis, TextKeys } from './redis-text.js';
import { ChannelListeners } from './channel-listeners.js';

type ScriptedRedis = (Redis | Cluster) & {
  progressCommit(stateKey: string, dirtyKey: string, fenceKey: string, textMetaKey: string, expected: string, state: string, ttl: number, channel: string, bookId: string, fence: string, publish: string, feed: string, terminalTtl: number, sectionPrefix: string): Promise<1 | -1 | [0, string]>;
};

export interface RedisBrokerOptions {
  /** One Redis; or `target` for a cluster or Sentinel. */
  url?: string;
  target?: RedisTarget;
  keyPrefix: string;
  ttlSeconds: number;
  /** The TTL of a finished book's state (TERMINAL_TTL_SECONDS); its live text expires no later. */
  terminalTtlSeconds?: number;
  log: Logger;
  /** The longest wait for any reply (BACKEND_TIMEOUT_MS). */
  timeoutMs: number;
  /** REDIS_WAIT_REPLICAS: replicas that must acknowledge a commit (WAIT) before it resolves; 0 or absent: none. */
  waitReplicas?: number;
}

/** WAIT's own bound, a share of BACKEND_TIMEOUT_MS: its reply must come before the command timeout does. */
const WAIT_SHARE_OF_TIMEOUT = 0.75;

/**
 * The production broker, on one Redis, a Sentinel-managed master or a Redis Cluster. Connections
 * per process: commands (one per node on a cluster) and one subscriber (one per master with
 * sharded pub/sub) shared by every book this process watches (Map<channel, Set<listener>>).
 */
export class RedisBroker implements Broker, DirtyClaims {
  readonly keys: RedisKeys;
  /** What the Redis text log (redis-text.ts) shares: the connections, the pub/sub mode, the error mapping. */
  readonly shared: SharedRedis;
  readonly #ttlSeconds: number;
  readonly #terminalTtlSeconds: number;
  /** The live text's names, so a finished book's text expires with it. */
  readonly #textKeys: TextKeys;
  readonly #log: Logger;
  readonly #faults: FaultLog;
  readonly #redis: ScriptedRedis;
  readonly #subscriber: Redis | Cluster;
  readonly #subscriptions: Subscriptions;
  /** SPUBLISH from the commit script (a cluster with sharded pub/sub). */
  readonly #publish: 'PUBLISH' | 'SPUBLISH';
  readonly #listeners: ChannelListeners<ProgressListener>;
  #everyBookSubscribed: Promise<void> = Promise.resolve();
  /** Every-book listeners and what to call when they may have missed states. */
  readonly #allListeners = new Map<ProgressListener, () => void>();
  readonly #claims: RedisDirtyClaims;
  readonly #waitReplicas: number;
  readonly #waitMs: number;
  #closed = false;
  /** On one Redis and Sentinel: PINGs both connections, so a silent one is noticed. */
  #healthPing: NodeJS.Timeout | null = null;

  constructor(options: RedisBrokerOptions) {
    const target: RedisTarget = options.target ?? { kind: 'single', url: options.url ?? '' };
    this.keys = target.kind === 'cluster' ? clusterKeys(options.keyPrefix) : redisKeys(options.keyPrefix);
    this.#ttlSeconds = options.ttlSeconds;
    this.#terminalTtlSeconds = options.terminalTtlSeconds ?? DEFAULT_TERMINAL_TTL_SECONDS;
    this.#textKeys = textKeys(options.keyPrefix, target.kind === 'cluster');
    this.#log = options.log;
    this.#faults = FaultLog.of(options.log);
    const timeoutMs = options.timeoutMs;
    this.#waitReplicas = options.waitReplicas ?? 0;
    this.#waitMs = Math.max(1, Math.floor(timeoutMs * WAIT_SHARE_OF_TIMEOUT));
    const { commands, subscriber } = openRedis(target, 'booksai-progress', timeoutMs);
    this.#redis = commands as ScriptedRedis;
    this.#redis.defineCommand('progressCommit', { numberOfKeys: 4, lua: COMMIT });
    this.#claims = new RedisDirtyClaims(commands, this.keys, (command) => this.#call(command));
    this.#redis.once('ready', () => void this.#checkEvictionPolicy());
    this.#subscriber = subscriber;
    const mode = target.kind !== 'cluster' ? 'single' : target.pubsub;
    this.#publish = mode === 'sharded' ? 'SPUBLISH' : 'PUBLISH';
    this.shared = { commands, subscriber, mode, timeoutMs, call: (command) => this.#call(command) };
    this.#subscriptions = new Subscriptions({
      subscriber,
      name: 'booksai-progress',
      mode,
      keys: this.keys,
      log: options.log,
      timeoutMs,
      readLatest: (bookIds) => this.#readLatest(bookIds),
      onMessage: (channel, raw, everyBook) => (everyBook ? this.#onAnyMessage(channel, raw) : this.#onMessage(channel, raw)),
      onGap: () => {
        for (const onGap of this.#allListeners.values()) onGap();
      },
    });
    this.#listeners = new ChannelListeners(this.#subscriptions);
    if (this.#redis === this.#subscriber) {
      // A cluster: ioredis replaces a node's silent connection and follows the slot map; the
      // shard subscribers watch their own connections.
      this.#redis.on('error', (error: Error) => this.#faults.report('redis_connection', 'redis connection error', { err: error.message }));
      return;
    }
    const pair: Array<[Redis | Cluster, Redis | Cluster]> = [
      [this.#redis, this.#subscriber],
      [this.#subscriber, this.#redis],
    ];
    for (const [connection, other] of pair) {
      // ioredis reconnects by itself; without a listener an 'error' event would crash the process.
      connection.on('error', (error: Error) => {
        this.#faults.report('redis_connection', 'redis connection error', { err: error.message });
        // One connection stopped answering: the other, to the same Redis, most likely has too.
        // Replaced now, the next command fails at once instead of waiting out the timeout again.
        if (error.message.startsWith('Socket timeout') && other.status === 'ready') other.disconnect(true);
      });
    }
    // The subscriber waits for nothing while no book changes, so nothing would notice that it
    // stopped answering: a PING on each connection keeps socketTimeout watching.
    const healthPing = setInterval(() => {
      for (const c of [this.#redis, this.#subscriber]) if (c.status === 'ready') c.ping().catch(() => {});
    }, timeoutMs);
    this.#healthPing = healthPing.unref();
  }

  async get(bookId: string): Promise<BookProgress | null> {
    const raw = await this.#call(() => this.#redis.get(this.keys.state(bookId)));
    return raw === null ? null : this.#parse(raw, bookId);
  }

  async getMany(bookIds: readonly string[]): Promise<Array<BookProgress | null>> {
    if (bookIds.length === 0) return [];
    const raws = await this.#call(() => this.#mget(bookIds));
    return raws.map((raw, i) => (raw === null ? null : this.#parse(raw, bookIds[i] as string)));
  }

  async commit(state: BookProgress, expectedVersion: number | null, fence?: Fence): Promise<CommitResult> {
    const partition = this.keys.partitionOf(state.bookId);
    const args: Parameters<ScriptedRedis['progressCommit']> = [
      this.keys.state(state.bookId),
      this.keys.dirty(partition),
      this.keys.fence(state.bookId),
      this.#textKeys.meta(state.bookId),
      expectedVersion === null ? '' : String(expectedVersion),
      JSON.stringify(state),
      this.#ttlSeconds,
      this.keys.channel(state.bookId),
      state.bookId,
      fence === undefined ? '' : String(fence),
      this.#publish,
      this.keys.feed(partition) ?? '',
      this.#terminalTtlSeconds,
      this.#textKeys.sectionPrefix(state.bookId),
    ];
    const reply = this.#waitReplicas === 0 ? await this.#call(() => this.#redis.progressCommit(...args)) : await this.#commitReplicated(args);
    if (reply === 1) return { committed: true };
    if (reply === -1) return { committed: false, fenced: true };
    const held = reply[1];
    return { committed: false, current: held === '' ? null : this.#parse(held, state.bookId) };
  }

  async subscribe(bookId: string, listener: ProgressListener): Promise<() => void> {
    const channel = this.keys.channel(bookId);
    return this.#listeners.add(channel, listener);
  }

  isLive(): boolean {
    return this.#subscriptions.live;
  }

  async subscribeAll(listener: ProgressListener, onGap: () => void): Promise<() => void> {
    this.#allListeners.set(listener, onGap);
    if (this.#allListeners.size === 1) this.#everyBookSubscribed = this.#subscriptions.addEveryBook();
    await this.#everyBookSubscribed;
    return () => {
      if (!this.#allListeners.delete(listener) || this.#allListeners.size > 0) return;
      this.#subscriptions.removeEveryBook();
    };
  }

  /** See RedisDirtyClaims. */
  claimDirty(owner: string, leaseMs: number, round: number | null): Promise<string[] | null> {
    return this.#claims.claimDirty(owner, leaseMs, round);
  }

  settleClaim(owner: string, done: boolean): Promise<void> {
    return this.#claims.settleClaim(owner, done);
  }

  /**
   * Resolves true once both connections are ready, or false after `timeoutMs` (Redis down:
   * the broker keeps reconnecting in the background and calls fail fast until then).
   */
  async ready(timeoutMs: number): Promise<boolean> {
    const both = await Promise.all([readyWithin(this.#redis, timeoutMs), readyWithin(this.#subscriber, timeoutMs)]);
    return both.every(Boolean);
  }

  /** Channels this process is subscribed to, for leak checks and metrics. */
  subscribedChannels(): number {
    return this.#listeners.size;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#healthPing) clearInterval(this.#healthPing);
    this.#listeners.clear();
    this.#allListeners.clear();
    this.#subscriptions.close();
    const connections = [...new Set([this.#redis, this.#subscriber])];
    await Promise.allSettled(connections.map((c) => c.quit()));
    for (const c of connections) c.disconnect();
  }

  /**
   * The commit script, then WAIT on the same connection (a pipeline: on a cluster both go to the
   * master of the book's slot), so the commit resolves only once REDIS_WAIT_REPLICAS replicas
   * have it; fewer in time is a BrokerNotReplicatedError.
   */
  async #commitReplicated(args: Parameters<ScriptedRedis['progressCommit']>): Promise<1 | -1 | [0, string]> {
    const results = await this.#call(async () => {
      const pipeline = (this.#redis.pipeline() as unknown as { progressCommit(...a: typeof args): { wait(n: number, ms: number): { exec(): Promise<Array<[Error | null, unknown]> | null> } } })
        .progressCommit(...args)
        .wait(this.#waitReplicas, this.#waitMs);
      const replies = await pipeline.exec();
      if (replies === null) throw new Error('the commit pipeline was discarded');
      for (const [error] of replies) if (error) throw error;
      return replies;
    });
    const reply = results[0]![1] as 1 | -1 | [0, string];
    const acknowledged = Number(results[1]![1]);
    if (reply === 1 && acknowledged < this.#waitReplicas) {
      this.#faults.report('redis_not_replicated', 'a commit was not acknowledged by REDIS_WAIT_REPLICAS replicas in time', { acknowledged, wanted: this.#waitReplicas });
      throw new BrokerNotReplicatedError(`the commit reached ${acknowledged} of the ${this.#waitReplicas} replicas REDIS_WAIT_REPLICAS asks for within ${this.#waitMs} ms`);
    }
    return reply;
  }

  #call<T>(command: () => Promise<T>): Promise<T> {
    return redisCall(this.#faults, command);
  }

  /** Warns when Redis may evict the dirty set or the claim (keys without a TTL) under memory pressure. */
  async #checkEvictionPolicy(): Promise<void> {
    try {
      const policy = maxmemoryPolicy(await this.#redis.info('memory'));
      if (policy !== null && evictsKeysWithoutTtl(policy)) {
        this.#log.warn(
          { maxmemoryPolicy: policy },
          'redis maxmemory-policy can evict keys without a TTL (the dirty set, snapshot claims): changed books could miss Postgres; use noeviction or a volatile-* policy',
        );
      }
    } catch (error) {
      this.#log.debug({ err: (error as Error).message }, 'could not read the redis maxmemory-policy');
    }
  }

  /** The raw states of `bookIds`, in order: one MGET, or on a cluster one per partition (slot). */
  async #mget(bookIds: readonly string[]): Promise<Array<string | null>> {
    if (this.keys.partitions === 1) return this.#redis.mget(bookIds.map((id) => this.keys.state(id)));
    const byPartition = new Map<number, number[]>();
    bookIds.forEach((id, i) => {
      const p = this.keys.partitionOf(id);
      const group = byPartition.get(p);
      if (group) group.push(i);
      else byPartition.set(p, [i]);
    });
    const raws = new Array<string | null>(bookIds.length).fill(null);
    await Promise.all(
      [...byPartition.values()].map(async (indexes) => {
        const values = await this.#redis.mget(indexes.map((i) => this.keys.state(bookIds[i] as string)));
        indexes.forEach((index, j) => (raws[index] = values[j] ?? null));
      }),
    );
    return raws;
  }

  /**
   * For the subscriptions' restore: once the command connection is back too, within
   * BACKEND_TIMEOUT_MS (else BrokerUnavailableError, and the restore retries).
   */
  async #readLatest(bookIds: string[]): Promise<Array<string | null>> {
    if (!(await readyWithin(this.#redis, this.shared.timeoutMs))) throw new BrokerUnavailableError('redis: the command connection is not ready to read the resubscribed books');
    return this.#call(() => this.#mget(bookIds));
  }

  #onAnyMessage(channel: string, message: string): void {
    if (this.#allListeners.size === 0) return;
    const decoded = this.#decode(message, channel);
    if (decoded === null) return;
    for (const listener of this.#allListeners.keys()) listener(decoded.state, decoded.json);
  }

  #onMessage(channel: string, message: string): void {
    const listeners = this.#listeners.of(channel);
    if (!listeners) return;
    const decoded = this.#decode(message, channel);
    if (decoded === null) return;
    for (const listener of listeners) listener(decoded.state, decoded.json);
  }

  #parse(raw: string, where: string): BookProgress | null {
    return parseState(raw, where, this.#log);
  }

  #decode(raw: string, where: string): DecodedState | null {
    return decodeState(raw, where, this.#log);
  }
}

/** True once `connection` is ready, false after `ms`; the listener does not outlive the wait. */
function readyWithin(connection: Redis | Cluster, ms: number): Promise<boolean> {
  if (connection.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const onReady = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      connection.off('ready', onReady);
      resolve(false);
    }, ms);
    connection.once('ready', onReady);
  });
}
