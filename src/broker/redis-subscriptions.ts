import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RunAgain } from '../run-again.js';
import { slotOf } from './cluster-keys.js';
import type { RedisKeys } from './keys.js';
import { ShardSubscribers } from './shard-subscribers.js';

const RESTORE_RETRY_MS = 1_000;

/** How a process subscribes: SUBSCRIBE/PSUBSCRIBE on one Redis, SSUBSCRIBE per shard on a cluster, or classic SUBSCRIBE on a cluster. */
export type PubSubMode = 'single' | 'sharded' | 'classic';

export interface SubscriptionsOptions {
  subscriber: Redis | Cluster;
  /** Connection name, shown in CLIENT LIST. */
  name: string;
  /** The longest wait for any reply (BACKEND_TIMEOUT_MS). */
  timeoutMs: number;
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
 * One subscriber per process (on a cluster with sharded pub/sub: one per master), shared by
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
  readonly #restores = new RunAgain(() => this.#restoreOnce(), { skip: () => this.#closed });
  #retry: NodeJS.Timeout | null = null;
  /** Sharded pub/sub: our subscriber per master. */
  readonly #shards: ShardSubscribers | null = null;

  constructor(options: SubscriptionsOptions) {
    this.#options = options;
    const { subscriber, mode, keys } = options;
    this.#feeds = new Set(Array.from({ length: keys.partitions }, (_, p) => keys.feed(p)).filter((feed): feed is string => feed !== null));
    const deliver = (channel: string, message: string) => options.onMessage(channel, message, this.#feeds.has(channel));
    if (mode === 'sharded') {
      this.#shards = new ShardSubscribers({
        cluster: subscriber as Cluster,
        name: options.name,
        timeoutMs: options.timeoutMs,
        log: options.log,
        slotOf,
        onMessage: deliver,
        onResubscribed: (channels) => void this.#redeliver(channels),
      });
      return;
    }
    subscriber.on('message', deliver);
    // Another Subscriptions may share the connection (the text log's): only our own pattern's messages are ours.
    const pattern = keys.channel('*');
    subscriber.on('pmessage', (matched: string, channel: string, message: string) => {
      if (matched === pattern) options.onMessage(channel, message, true);
    });
    subscriber.on('ready', () => this.#restore());
    subscriber.on('close', () => {
      this.#live = false;
    });
    if (mode === 'classic') {
      // A node went away (failover, kill): ioredis moves the classic subscriber to another node;
      // until restored here, messages may have been missed.
      subscriber.on('-node', () => this.#lost());
    }
  }

  /** True while every subscription delivers (see Broker.isLive). */
  get live(): boolean {
    return this.#shards ? this.#shards.live : this.#live;
  }

  get size(): number {
    return this.#channels.size;
  }

  async add(channel: string): Promise<void> {
    this.#channels.add(channel);
    if (this.#shards) {
      await this.#shards.add([channel]).catch((error: Error) => this.#options.log.debug({ err: error.message, channel }, 'subscribe deferred until its master answers'));
      return;
    }
    // While Redis is down this fails at once; the restore subscribes every channel when it is back.
    await this.#subscribe([channel]).catch((error: Error) => this.#options.log.debug({ err: error.message, channel }, 'subscribe deferred until redis is ready'));
  }

  remove(channel: string): void {
    if (!this.#channels.delete(channel)) return;
    if (this.#shards) return this.#shards.remove([channel]);
    this.#options.subscriber.unsubscribe(channel).catch(() => {
      // Disconnected: the server dropped the subscription with the connection already.
    });
  }

  async addEveryBook(): Promise<void> {
    this.#everyBook = true;
    if (this.#shards) {
      await this.#shards.add([...this.#feeds]).catch((error: Error) => this.#options.log.debug({ err: error.message }, 'every-book subscription deferred until every master answers'));
      return;
    }
    await this.#subscribeEveryBook().catch((error: Error) => this.#options.log.debug({ err: error.message }, 'every-book subscription deferred until redis is ready'));
  }

  removeEveryBook(): void {
    this.#everyBook = false;
    if (this.#shards) return this.#shards.remove([...this.#feeds]);
    const { subscriber, mode, keys } = this.#options;
    const done = () => {
      // Disconnected: the server dropped the subscription with the connection already.
    };
    if (mode === 'single') subscriber.punsubscribe(keys.channel('*')).catch(done);
    else for (const feed of this.#feeds) subscriber.unsubscribe(feed).catch(done);
  }

  close(): void {
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    this.#shards?.close();
    this.#channels.clear();
  }

  /** Sharded: `channels` were subscribed again on a new master; hand their listeners what they may have missed. */
  async #redeliver(channels: string[]): Promise<void> {
    const { keys, log } = this.#options;
    if (this.#everyBook && channels.some((channel) => this.#feeds.has(channel))) this.#options.onGap();
    const books = channels.filter((channel) => this.#channels.has(channel));
    for (let attempt = 0; books.length > 0 && !this.#closed; attempt++) {
      try {
        const states = await this.#options.readLatest(books.map((channel) => keys.bookIdOfChannel(channel)));
        states.forEach((raw, i) => {
          if (raw !== null) this.#options.onMessage(books[i] as string, raw, false);
        });
        return;
      } catch (error) {
        log.warn({ err: (error as Error).message, attempt }, 'reading the states of resubscribed books failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, RESTORE_RETRY_MS));
      }
    }
  }

  #lost(): void {
    this.#live = false;
    this.#scheduleRestore();
  }

  /** Subscribes `channels` (one Redis, or classic pub/sub on a cluster). */
  async #subscribe(channels: string[]): Promise<void> {
    if (channels.length === 0) return;
    const { subscriber, mode, keys } = this.#options;
    await this.#options.subscriber.subscribe(...channels);
  }

  async #subscribeEveryBook(): Promise<void> {
    const { subscriber, mode, keys } = this.#options;
    if (mode === 'single') await subscriber.psubscribe(keys.channel('*'));
    else await subscriber.subscribe(...this.#feeds);
  }

  /** Restores every subscription and re-delivers the latest states; one restore at a time, re-run when asked again meanwhile. */
  #restore(): void {
    this.#restores.request();
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
