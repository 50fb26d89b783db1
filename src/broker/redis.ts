import { Redis, ReplyError } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { DEFAULT_BACKEND_TIMEOUT_MS } from '../config.js';
import { FaultLog } from '../fault-log.js';
import { BookProgressSchema } from '../progress/schema.js';
import { isBookProgress } from '../progress/state-validator.js';
import type { BookProgress } from '../progress/schema.js';
import type { CommitResult, Fence } from '../progress/tracker.js';
import { BrokerFullError, BrokerUnavailableError } from './broker.js';
import type { Broker, ProgressListener } from './broker.js';
import { evictsKeysWithoutTtl, maxmemoryPolicy } from './eviction.js';
import { CLAIM_DIRTY, COMMIT, SETTLE_CLAIM } from './scripts.js';
import { redisKeys } from './keys.js';
import type { RedisKeys } from './keys.js';

const MAX_RECONNECT_DELAY_MS = 2_000;
const RESUBSCRIBE_RETRY_MS = 1_000;
/** TCP keepalive: finds a peer that vanished for good (a proxy or NAT in between answers it otherwise). */
const KEEPALIVE_MS = 10_000;

/**
 * Connection options shared by both connections: fail fast while Redis is down, never wait
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

type ScriptedRedis = Redis & {
  progressCommit(stateKey: string, dirtyKey: string, fenceKey: string, expected: string, state: string, ttl: number, channel: string, bookId: string, fence: string): Promise<1 | -1 | [0, string]>;
  progressClaimDirty(dirty: string, claimed: string, owner: string, round: string, ownerId: string, leaseMs: number, roundNumber: string): Promise<string[] | null>;
  progressSettleClaim(dirty: string, claimed: string, owner: string, ownerId: string, done: string): Promise<number>;
};

export interface RedisBrokerOptions {
  url: string;
  keyPrefix: string;
  ttlSeconds: number;
  log: Logger;
  /** The longest wait for any reply (BACKEND_TIMEOUT_MS). */
  timeoutMs?: number;
}

/**
 * The production broker. Two connections per process: commands, and one subscriber
 * shared by every book this process watches (Map<channel, Set<listener>>).
 */
export class RedisBroker implements Broker {
  readonly keys: RedisKeys;
  readonly #ttlSeconds: number;
  readonly #log: Logger;
  readonly #faults: FaultLog;
  readonly #redis: ScriptedRedis;
  readonly #subscriber: Redis;
  readonly #listeners = new Map<string, Set<ProgressListener>>();
  /** Every-book listeners and what to call when they may have missed states. */
  readonly #allListeners = new Map<ProgressListener, () => void>();
  #wasReady = false;
  #closed = false;
  /** Subscriptions restored and delivering; see Broker.isLive. */
  #live = false;
  readonly #healthPing: NodeJS.Timeout;

  constructor(options: RedisBrokerOptions) {
    this.keys = redisKeys(options.keyPrefix);
    this.#ttlSeconds = options.ttlSeconds;
    this.#log = options.log;
    this.#faults = FaultLog.of(options.log);
    const timeoutMs = options.timeoutMs ?? DEFAULT_BACKEND_TIMEOUT_MS;
    const connection = redisConnectionOptions(timeoutMs);
    this.#redis = new Redis(options.url, { ...connection, connectionName: 'booksai-progress' }) as ScriptedRedis;
    this.#redis.defineCommand('progressCommit', { numberOfKeys: 3, lua: COMMIT });
    this.#redis.defineCommand('progressClaimDirty', { numberOfKeys: 4, lua: CLAIM_DIRTY });
    this.#redis.defineCommand('progressSettleClaim', { numberOfKeys: 3, lua: SETTLE_CLAIM });
    this.#redis.once('ready', () => void this.#checkEvictionPolicy());
    this.#subscriber = new Redis(options.url, { ...connection, connectionName: 'booksai-progress-sub' });
    this.#subscriber.on('message', (channel: string, message: string) => this.#onMessage(channel, message));
    this.#subscriber.on('pmessage', (_pattern: string, channel: string, message: string) => this.#onAnyMessage(channel, message));
    this.#subscriber.on('ready', () => void this.#resubscribe());
    this.#subscriber.on('close', () => {
      this.#live = false;
    });
    const pair: Array<[Redis, Redis]> = [
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
    this.#healthPing = setInterval(() => {
      for (const c of [this.#redis, this.#subscriber]) if (c.status === 'ready') c.ping().catch(() => {});
    }, timeoutMs);
    this.#healthPing.unref();
  }

  async get(bookId: string): Promise<BookProgress | null> {
    const raw = await this.#call(() => this.#redis.get(this.keys.state(bookId)));
    return raw === null ? null : this.#parse(raw, bookId);
  }

  async getMany(bookIds: readonly string[]): Promise<Array<BookProgress | null>> {
    if (bookIds.length === 0) return [];
    const raws = await this.#call(() => this.#redis.mget(bookIds.map((id) => this.keys.state(id))));
    return raws.map((raw, i) => (raw === null ? null : this.#parse(raw, bookIds[i] as string)));
  }

  async commit(state: BookProgress, expectedVersion: number | null, fence?: Fence): Promise<CommitResult> {
    const reply = await this.#call(() =>
      this.#redis.progressCommit(
        this.keys.state(state.bookId),
        this.keys.dirty,
        this.keys.fence(state.bookId),
        expectedVersion === null ? '' : String(expectedVersion),
        JSON.stringify(state),
        this.#ttlSeconds,
        this.keys.channel(state.bookId),
        state.bookId,
        fence === undefined ? '' : String(fence),
      ),
    );
    if (reply === 1) return { committed: true };
    if (reply === -1) return { committed: false, fenced: true };
    const held = reply[1];
    return { committed: false, current: held === '' ? null : this.#parse(held, state.bookId) };
  }

  async subscribe(bookId: string, listener: ProgressListener): Promise<() => void> {
    const channel = this.keys.channel(bookId);
    let listeners = this.#listeners.get(channel);
    if (!listeners) {
      this.#listeners.set(channel, (listeners = new Set()));
      // While Redis is down this fails at once; #resubscribe subscribes every channel on 'ready'.
      await this.#subscriber.subscribe(channel).catch((error: Error) => this.#log.debug({ err: error.message, channel }, 'subscribe deferred until redis is ready'));
    }
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size > 0 || this.#listeners.get(channel) !== listeners) return;
      this.#listeners.delete(channel);
      this.#subscriber.unsubscribe(channel).catch(() => {
        // Disconnected: the server dropped the subscription with the connection already.
      });
    };
  }

  isLive(): boolean {
    return this.#live;
  }

  async subscribeAll(listener: ProgressListener, onGap: () => void): Promise<() => void> {
    const pattern = this.keys.channel('*');
    this.#allListeners.set(listener, onGap);
    if (this.#allListeners.size === 1) {
      await this.#subscriber.psubscribe(pattern).catch((error: Error) => this.#log.debug({ err: error.message }, 'psubscribe deferred until redis is ready'));
    }
    return () => {
      if (!this.#allListeners.delete(listener) || this.#allListeners.size > 0) return;
      this.#subscriber.punsubscribe(pattern).catch(() => {
        // Disconnected: the server dropped the subscription with the connection already.
      });
    };
  }

  async claimDirty(owner: string, leaseMs: number, round: number | null): Promise<string[] | null> {
    const { dirty, claimed, claimOwner, claimRound } = this.keys;
    const roundArg = round === null ? '' : String(round);
    return this.#call(() => this.#redis.progressClaimDirty(dirty, claimed, claimOwner, claimRound, owner, leaseMs, roundArg));
  }

  async settleClaim(owner: string, done: boolean): Promise<void> {
    const { dirty, claimed, claimOwner } = this.keys;
    await this.#call(() => this.#redis.progressSettleClaim(dirty, claimed, claimOwner, owner, done ? '1' : '0'));
  }

  /**
   * Resolves true once both connections are ready, or false after `timeoutMs` (Redis down:
   * the broker keeps reconnecting in the background and calls fail fast until then).
   */
  async ready(timeoutMs: number): Promise<boolean> {
    const connected = (connection: Redis) =>
      connection.status === 'ready' ? Promise.resolve() : new Promise<void>((resolve) => connection.once('ready', () => resolve()));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const both = Promise.all([connected(this.#redis), connected(this.#subscriber)]).then(() => true as const);
    try {
      return await Promise.race([both, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Channels this process is subscribed to, for leak checks and metrics. */
  subscribedChannels(): number {
    return this.#listeners.size;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#healthPing);
    this.#listeners.clear();
    this.#allListeners.clear();
    await Promise.allSettled([this.#redis.quit(), this.#subscriber.quit()]);
    this.#redis.disconnect();
    this.#subscriber.disconnect();
  }

  async #call<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      const message = (error as Error).message;
      if (error instanceof ReplyError) {
        // At maxmemory with noeviction Redis refuses writes (a script's first write, so nothing of it ran).
        if (!/\bOOM\b/.test(message)) throw error;
        this.#faults.report('redis_full', 'redis is out of memory; commits are refused', { err: message.split('.')[0] });
        throw new BrokerFullError('redis is out of memory', { cause: error });
      }
      this.#faults.report('redis_unavailable', 'redis did not answer', { err: message });
      throw new BrokerUnavailableError(`redis unavailable: ${message}`, { cause: error });
    }
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

  #onAnyMessage(channel: string, message: string): void {
    if (this.#allListeners.size === 0) return;
    const decoded = this.#decode(message, channel);
    if (decoded === null) return;
    for (const listener of this.#allListeners.keys()) listener(decoded.state, decoded.json);
  }

  #onMessage(channel: string, message: string): void {
    const listeners = this.#listeners.get(channel);
    if (!listeners) return;
    const decoded = this.#decode(message, channel);
    if (decoded === null) return;
    for (const listener of listeners) listener(decoded.state, decoded.json);
  }

  /** After (re)connecting: subscribe every watched channel, then hand listeners the state they may have missed. */
  async #resubscribe(): Promise<void> {
    if (this.#closed) return;
    const reconnected = this.#wasReady;
    this.#wasReady = true;
    if (this.#allListeners.size > 0) {
      await this.#subscriber
        .psubscribe(this.keys.channel('*'))
        .catch((error: Error) => this.#log.warn({ err: error.message }, 'restoring the all-books subscription failed'));
      if (reconnected) for (const onGap of this.#allListeners.values()) onGap();
    }
    const channels = [...this.#listeners.keys()];
    if (channels.length === 0) {
      this.#live = this.#subscriber.status === 'ready';
      return;
    }
    try {
      await this.#subscriber.subscribe(...channels);
      if (this.#redis.status !== 'ready') await new Promise((resolve) => this.#redis.once('ready', resolve));
      const bookIds = channels.map((channel) => this.keys.bookIdOfChannel(channel));
      const states = await this.#redis.mget(bookIds.map((id) => this.keys.state(id)));
      states.forEach((raw, i) => {
        if (raw !== null) this.#onMessage(channels[i] as string, raw);
      });
      this.#live = this.#subscriber.status === 'ready';
      this.#log.info({ channels: channels.length }, 'redis subscriptions restored');
    } catch (error) {
      this.#log.warn({ err: (error as Error).message }, 'restoring redis subscriptions failed; retrying');
      setTimeout(() => {
        if (this.#subscriber.status === 'ready' && !this.#live) void this.#resubscribe();
      }, RESUBSCRIBE_RETRY_MS).unref();
    }
  }

  /** Parses a state from Redis; a foreign publisher's malformed value is logged and ignored. */
  #parse(raw: string, where: string): BookProgress | null {
    return this.#validate(raw, where)?.state ?? null;
  }

  /**
   * A message's state and its JSON. The JSON is the message itself when it holds exactly the
   * state's fields (as every state a server commits does), which spares serializing it again.
   */
  #decode(raw: string, where: string): { state: BookProgress; json: string } | null {
    const valid = this.#validate(raw, where);
    if (valid === null) return null;
    const { state, fieldCount } = valid;
    // The schema drops unknown fields; raw would carry them on, so serialize the state instead.
    return { state, json: fieldCount === countFields(state) ? raw : JSON.stringify(state) };
  }

  #validate(raw: string, where: string): { state: BookProgress; fieldCount: number } | null {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      this.#log.warn({ where }, 'ignoring non-JSON progress state in redis');
      return null;
    }
    const fieldCount = typeof parsed === 'object' && parsed !== null ? countFields(parsed) : 0;
    if (isBookProgress(parsed)) return { state: parsed, fieldCount };
    // Only an invalid state pays for zod, for a message that says what is wrong.
    this.#log.warn({ where, issue: BookProgressSchema.safeParse(parsed).error?.issues[0]?.message }, 'ignoring invalid progress state in redis');
    return null;
  }
}

/** An object's own enumerable fields, counted without building the array Object.keys would: this runs for every message. */
function countFields(value: object): number {
  let count = 0;
  for (const key in value) if (Object.hasOwn(value, key)) count++;
  return count;
}
