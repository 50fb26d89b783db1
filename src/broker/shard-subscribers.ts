import { Redis } from 'ioredis';
import type { Cluster } from 'ioredis';
import type { Logger } from 'pino';
import { RunAgain } from '../run-again.js';
import { redisConnectionOptions } from './redis-connection.js';
import { SubscriptionLedger } from './subscription-ledger.js';
import type { SubscribeAttempt } from './subscription-ledger.js';

const RETRY_MS = 500;

export interface ShardSubscribersOptions {
  cluster: Cluster;
  name: string;
  /** The longest wait for any reply (BACKEND_TIMEOUT_MS); also how often an idle subscriber is PINGed. */
  timeoutMs: number;
  log: Logger;
  slotOf(channel: string): number;
  onMessage(channel: string, raw: string): void;
  /** Channels subscribed again after a failover, a slot move or a reconnection: their books may have missed states. */
  onResubscribed(channels: string[]): void;
}

/**
 * Sharded pub/sub on a cluster: one subscriber connection per master, each SSUBSCRIBEd to the
 * channels of the slots that master owns. After the slot map changes (failover, migration, an
 * unsolicited `sunsubscribe`) or a connection drops, the moved slots are subscribed on their
 * new master and `onResubscribed` names their channels, so their latest states are read again.
 *
 * This is ours rather than ioredis's `shardedSubscribers`, because the broker must know when
 * every channel is subscribed again (to re-deliver and to report isLive), which ioredis does not tell.
 */
export class ShardSubscribers {
  readonly #options: ShardSubscribersOptions;
  /** Each wanted channel's subscription: in flight, confirmed on a master, or lost. */
  readonly #ledger: SubscriptionLedger;
  /** Subscriber per master, by node key (host:port as in the slot map). */
  readonly #shards = new Map<string, Redis>();
  readonly #syncs = new RunAgain(() => this.#syncOnce(), { skip: () => this.#closed, after: () => this.#changed() });
  #retry: NodeJS.Timeout | null = null;
  #closed = false;
  /** `live`, worked out; null after a change. */
  #live: boolean | null = null;
  readonly #healthPing: NodeJS.Timeout;

  constructor(options: ShardSubscribersOptions) {
    this.#options = options;
    this.#ledger = new SubscriptionLedger((slot) => options.cluster.slots[slot]?.[0]);
    // 'refresh' follows every read of the slot map (periodic, and after MOVED).
    options.cluster.on('refresh', () => {
      this.#changed();
      this.#sync();
    });
    options.cluster.on('ready', () => {
      this.#changed();
      this.#sync();
    });
    options.cluster.on('close', this.#changed);
    options.cluster.on('end', this.#changed);
    // A subscriber waits for nothing while its books are quiet, so nothing would notice that it
    // stopped answering: a PING keeps socketTimeout watching (a silent one is replaced, then synced).
    this.#healthPing = setInterval(() => {
      for (const connection of this.#shards.values()) if (connection.status === 'ready') connection.ping().catch(() => {});
    }, options.timeoutMs).unref();
  }

  /**
   * True while every channel relied on is subscribed on the master that owns its slot now. Asked at every
   * poll answered from memory, so it is worked out again only after something changed.
   */
  get live(): boolean {
    this.#live ??= this.#computeLive();
    return this.#live;
  }

  #changed = (): void => {
    this.#live = null;
  };

  #computeLive(): boolean {
    if (this.#options.cluster.status !== 'ready') return false;
    return this.#ledger.live((node) => this.#shards.get(node)?.status === 'ready');
  }

  /** Subscribes `channels` (any slots); resolves once subscribed, rejects when their master does not answer (a later sync retries). */
  async add(channels: string[]): Promise<void> {
    const bySlot = new Map<number, string[]>();
    for (const channel of channels) {
      const slot = this.#options.slotOf(channel);
      this.#ledger.want(channel, slot);
      const group = bySlot.get(slot);
      if (group) group.push(channel);
      else bySlot.set(slot, [channel]);
    }
    this.#changed();
    await Promise.all(
      [...bySlot].map(async ([slot, group]) => {
        const node = this.#options.cluster.slots[slot]?.[0];
        const shard = node === undefined ? undefined : this.#shardOf(node);
        if (node === undefined || !shard) throw new Error(`no master known for slot ${slot}`);
        // A channel first subscribed now has nothing to re-deliver: the caller reads after subscribing.
        const { displaced } = await this.#subscribe(shard, this.#ledger.begin(node, group, false));
        if (displaced) this.#sync();
      }),
    ).finally(this.#changed).catch((error: Error) => {
      this.#scheduleSync();
      throw error;
    });
  }

  remove(channels: string[]): void {
    this.#changed();
    for (const channel of channels) {
      const node = this.#ledger.unwant(channel);
      const shard = node === null ? undefined : this.#shards.get(node);
      shard?.sunsubscribe(channel).catch(() => {
        // Disconnected: the server dropped the subscription with the connection already.
      });
    }
  }

  close(): void {
    this.#closed = true;
    this.#changed();
    clearInterval(this.#healthPing);
    if (this.#retry) clearTimeout(this.#retry);
    for (const connection of this.#shards.values()) connection.disconnect();
    this.#shards.clear();
    this.#ledger.clear();
  }

  /** The subscriber of master `node`, opened on first use. */
  #shardOf(node: string): Redis | undefined {
    let shard = this.#shards.get(node);
    if (!shard && !this.#closed) {
      shard = this.#connect(node);
      this.#shards.set(node, shard);
    }
    return shard;
  }

  /** Sends `attempt`'s SSUBSCRIBE and records the reply; rejects as the command does. */
  async #subscribe(shard: Redis, attempt: SubscribeAttempt): Promise<{ subscribed: string[]; displaced: boolean }> {
    try {
      await shard.ssubscribe(...attempt.channels);
    } catch (error) {
      this.#ledger.settle(attempt, false);
      throw error;
    }
    return this.#ledger.settle(attempt, true);
  }

  #connect(nodeKey: string): Redis {
    const { cluster, name, log } = this.#options;
    const separator = nodeKey.lastIndexOf(':');
    const nodeOptions = cluster.options.redisOptions ?? {};
    const connection = new Redis({
      ...redisConnectionOptions(this.#options.timeoutMs),
      ...nodeOptions,
      host: nodeKey.slice(0, separator),
      port: Number(nodeKey.slice(separator + 1)),
      connectionName: `${name}-ssub`,
      // Commands wait for the connection (bounded by commandTimeout); reconnection is ours to follow.
      enableOfflineQueue: true,
      autoResubscribe: false,
    });
    connection.on('smessage', (channel: string, message: string) => this.#options.onMessage(channel, message));
    connection.on('error', (error: Error) => log.debug({ err: error.message, node: nodeKey }, 'shard subscriber error'));
    connection.on('ready', this.#changed);
    const lost = () => {
      this.#changed();
      if (this.#shards.get(nodeKey) === connection) this.#ledger.lost(nodeKey);
      this.#scheduleSync();
    };
    connection.on('close', lost);
    // An unsolicited sunsubscribe: a slot moved away from this master. Which one is not said.
    connection.on('moved', () => {
      log.debug({ node: nodeKey }, 'a slot moved away from this master');
      lost();
      cluster.refreshSlotsCache();
    });
    return connection;
  }

  /** Subscribes every wanted slot on its current master; one sync at a time, re-run when asked meanwhile. */
  #sync(): void {
    this.#syncs.request();
  }

  async #syncOnce(): Promise<void> {
    const { cluster, log } = this.#options;
    if (cluster.status !== 'ready') return;
    // Masters that own none of our slots any more (demoted, or emptied by migration).
    const owners = this.#ledger.owners();
    for (const [node, shard] of this.#shards) {
      if (owners.has(node)) continue;
      this.#shards.delete(node);
      this.#ledger.lost(node);
      shard.disconnect();
    }
    const due = this.#ledger.due();
    if (due.length === 0) return;
    let displaced = false;
    const results = await Promise.allSettled(
      due.map(async ({ slot, node, channels }) => {
        const shard = this.#shardOf(node);
        if (!shard) return [];
        log.debug({ slot, node, channels: channels.length }, 'subscribing a slot on its master');
        // Lost again meanwhile, a channel is not in `subscribed`: the sync that loss scheduled subscribes (and re-delivers) it.
        const result = await this.#subscribe(shard, this.#ledger.begin(node, channels, true));
        displaced ||= result.displaced;
        return result.subscribed;
      }),
    );
    const resubscribed = results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
    const failed = results.filter((r) => r.status === 'rejected');
    if (resubscribed.length > 0) {
      log.info({ channels: resubscribed.length }, 'shard subscriptions moved to their current masters');
      this.#options.onResubscribed(resubscribed);
    }
    if (failed.length > 0) {
      log.warn({ slots: failed.length, err: ((failed[0] as PromiseRejectedResult).reason as Error).message }, 'shard subscriptions not restored yet; retrying');
      this.#scheduleSync();
    } else if (displaced) {
      this.#scheduleSync();
    }
  }

  #scheduleSync(): void {
    if (this.#closed || this.#retry) return;
    this.#retry = setTimeout(() => {
      this.#retry = null;
      // The slot map may be behind (a failover in progress): read it again, then sync on 'refresh'.
      this.#options.cluster.refreshSlotsCache();
      this.#sync();
    }, RETRY_MS);
    this.#retry.unref();
  }
}
