import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisKeys } from './keys.js';

const RESTORE_RETRY_MS = 1_000;

/** How a process subscribes: SUBSCRIBE/PSUBSCRIBE on one Redis, SSUBSCRIBE per shard on a cluster, or classic SUBSCRIBE on a cluster. */
export type PubSubMode = 'single' | 'sharded' | 'classic';

export interface SubscriptionsOptions {
  subscriber: Redis | Cluster;
  mode: PubSubMode;
  keys: RedisKeys;
  log: Logger;
  /** The held JSON of each book, in order; for what a listener may have missed. */
  readLatest(bookIds: string[]): Promise<Array<string | null>>;
  /** Called with each message: the channel's book (or null for a feed) and the raw JSON. */
  onMessage(channel: string, raw: string, everyBook: boolean): void;
  /** Called after a reconnection, for every-book listeners that cannot be re-delivered to. */
  onGap(): void;
}

/**
 * One subscriber per process (on a cluster: one per master, inside ioredis's Cluster), shared by
 * every watched book: SUBSCRIBE on the first local listener, UNSUBSCRIBE on the last. After any
 * reconnection, failover or slot move the subscriptions are restored, and then the latest state
 * of every watched book is read and delivered again, so listeners end on the latest state.
 */
export class Subscriptions {
  readonly #options: SubscriptionsOptions;
  /** Watched book channels (their listeners live in the broker). */
  readonly #channels = new Set<string>();
  /** Feed channels of the every-book subscription on a cluster. */
  readonly #feeds: ReadonlySet<string>;
  #everyBook = false;
  #live = false;
  #wasReady = false;
  #closed = false;
  #restoring: Promise<void> | null = null;
  #again = false;
  #retry: NodeJS.Timeout | null = null;

  constructor(options: SubscriptionsOptions) {
    this.#options = options;
    const { subscriber, mode, keys } = options;
    this.#feeds = new Set(Array.from({ length: keys.partitions }, (_, p) => keys.feed(p)).filter((feed): feed is string => feed !== null));
    const deliver = (channel: string, message: string) => options.onMessage(channel, message, this.#feeds.has(channel));
    subscriber.on(mode === 'sharded' ? 'smessage' : 'message', deliver);
    subscriber.on('pmessage', (_pattern: string, channel: string, message: string) => options.onMessage(channel, message, true));
    subscriber.on('ready', () => this.#restore());
    subscriber.on('close', () => {
      this.#live = false;
    });
    if (mode !== 'single') {
      // A shard's subscriber or a node went away (failover, kill): missed messages until restored.
      // ioredis re-subscribes on the new topology and says so with subscribersReady.
      subscriber.on('-node', () => this.#lost());
      subscriber.on('-subscriber', () => this.#lost());
      subscriber.on('subscribersReady', () => this.#restore());
    }
  }

  /** True while every subscription delivers (see Broker.isLive). */
  get live(): boolean {
    return this.#live;
  }

  get size(): number {
    return this.#channels.size;
  }

  async add(channel: string): Promise<void> {
    this.#channels.add(channel);
    // While Redis is down this fails at once; the restore subscribes every channel when it is back.
    await this.#subscribe([channel]).catch((error: Error) => this.#options.log.debug({ err: error.message, channel }, 'subscribe deferred until redis is ready'));
  }

  remove(channel: string): void {
    if (!this.#channels.delete(channel)) return;
    const { subscriber, mode } = this.#options;
    (mode === 'sharded' ? subscriber.sunsubscribe(channel) : subscriber.unsubscribe(channel)).catch(() => {
      // Disconnected: the server dropped the subscription with the connection already.
    });
  }

  async addEveryBook(): Promise<void> {
    this.#everyBook = true;
    await this.#subscribeEveryBook().catch((error: Error) => this.#options.log.debug({ err: error.message }, 'every-book subscription deferred until redis is ready'));
  }

  removeEveryBook(): void {
    this.#everyBook = false;
    const { subscriber, mode, keys } = this.#options;
    const done = () => {
      // Disconnected: the server dropped the subscription with the connection already.
    };
    if (mode === 'single') subscriber.punsubscribe(keys.channel('*')).catch(done);
    else for (const feed of this.#feeds) (mode === 'sharded' ? subscriber.sunsubscribe(feed) : subscriber.unsubscribe(feed)).catch(done);
  }

  close(): void {
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.#channels.clear();
  }

  #lost(): void {
    this.#live = false;
    this.#scheduleRestore();
  }

  /** Subscribes `channels`: on a cluster with sharded pub/sub one SSUBSCRIBE per slot (a partition). */
  async #subscribe(channels: string[]): Promise<void> {
    if (channels.length === 0) return;
    const { subscriber, mode, keys } = this.#options;
    if (mode !== 'sharded') {
      await subscriber.subscribe(...channels);
      return;
    }
    const byPartition = new Map<number, string[]>();
    for (const channel of channels) {
      const partition = keys.partitionOf(keys.bookIdOfChannel(channel));
      const group = byPartition.get(partition);
      if (group) group.push(channel);
      else byPartition.set(partition, [channel]);
    }
    await Promise.all([...byPartition.values()].map((group) => subscriber.ssubscribe(...group)));
  }

  async #subscribeEveryBook(): Promise<void> {
    const { subscriber, mode, keys } = this.#options;
    if (mode === 'single') await subscriber.psubscribe(keys.channel('*'));
    else if (mode === 'sharded') await Promise.all([...this.#feeds].map((feed) => subscriber.ssubscribe(feed)));
    else await subscriber.subscribe(...this.#feeds);
  }

  /** Restores every subscription and re-delivers the latest states; one restore at a time, re-run when asked again meanwhile. */
  #restore(): void {
    if (this.#closed) return;
    if (this.#restoring) {
      this.#again = true;
      return;
    }
    this.#restoring = this.#restoreOnce().finally(() => {
      this.#restoring = null;
      if (this.#again) {
        this.#again = false;
        this.#restore();
      }
    });
  }

  async #restoreOnce(): Promise<void> {
    const { subscriber, log } = this.#options;
    const reconnected = this.#wasReady;
    this.#wasReady = true;
    this.#live = false;
    const channels = [...this.#channels];
    try {
      if (this.#everyBook) await this.#subscribeEveryBook();
      await this.#subscribe(channels);
      if (this.#everyBook && reconnected) this.#options.onGap();
      if (channels.length > 0) {
        const bookIds = channels.map((channel) => this.#options.keys.bookIdOfChannel(channel));
        const states = await this.#options.readLatest(bookIds);
        states.forEach((raw, i) => {
          if (raw !== null) this.#options.onMessage(channels[i] as string, raw, false);
        });
        log.info({ channels: channels.length }, 'redis subscriptions restored');
      }
      this.#live = subscriber.status === 'ready';
    } catch (error) {
      log.warn({ err: (error as Error).message }, 'restoring redis subscriptions failed; retrying');
      this.#scheduleRestore();
    }
  }

  #scheduleRestore(): void {
    if (this.#closed || this.#retry) return;
    this.#retry = setTimeout(() => {
      this.#retry = null;
      if (this.#options.subscriber.status === 'ready' && !this.#live) this.#restore();
      else if (!this.#live) this.#scheduleRestore();
    }, RESTORE_RETRY_MS);
    this.#retry.unref();
  }
}
