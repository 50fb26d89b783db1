import { Redis } from 'ioredis';
import type { Cluster } from 'ioredis';
import type { Logger } from 'pino';
import { redisConnectionOptions } from './redis-connection.js';

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

interface Shard {
  connection: Redis;
  /** Slots whose channels this connection has confirmed SSUBSCRIBE for. */
  slots: Set<number>;
  /**
   * +1 each time the connection may have lost subscriptions. An SSUBSCRIBE confirmed across a
   * loss does not count: the server's sunsubscribe may have come after its reply.
   */
  losses: number;
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
  /** Channels wanted, by slot. */
  readonly #wanted = new Map<number, Set<string>>();
  /** Subscriber per master, by node key (host:port as in the slot map). */
  readonly #shards = new Map<string, Shard>();
  #syncing: Promise<void> | null = null;
  #again = false;
  #retry: NodeJS.Timeout | null = null;
  #closed = false;
  /** `live`, worked out; null after a change. */
  #live: boolean | null = null;
  readonly #healthPing: NodeJS.Timeout;

  constructor(options: ShardSubscribersOptions) {
    this.#options = options;
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
      for (const { connection } of this.#shards.values()) if (connection.status === 'ready') connection.ping().catch(() => {});
    }, options.timeoutMs).unref();
  }

  /**
   * True while every wanted slot is subscribed on the master that owns it now. Asked at every
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
    const slots = this.#options.cluster.slots;
    for (const slot of this.#wanted.keys()) {
      const owner = slots[slot]?.[0];
      const shard = owner === undefined ? undefined : this.#shards.get(owner);
      if (!shard || shard.connection.status !== 'ready' || !shard.slots.has(slot)) return false;
    }
    return this.#options.cluster.status === 'ready';
  }

  /** Subscribes `channels` (any slots); resolves once subscribed, rejects when their master does not answer (a later sync retries). */
  async add(channels: string[]): Promise<void> {
    const bySlot = new Map<number, string[]>();
    for (const channel of channels) {
      const slot = this.#options.slotOf(channel);
      let wanted = this.#wanted.get(slot);
      if (!wanted) this.#wanted.set(slot, (wanted = new Set()));
      wanted.add(channel);
      const group = bySlot.get(slot);
      if (group) group.push(channel);
      else bySlot.set(slot, [channel]);
    }
    await Promise.all(
      [...bySlot].map(async ([slot, group]) => {
        const shard = this.#shardOf(slot);
        if (!shard) throw new Error(`no master known for slot ${slot}`);
        const losses = shard.losses;
        await shard.connection.ssubscribe(...group);
        // A slot first subscribed now has nothing to re-deliver: the caller reads after subscribing.
        if (shard.losses === losses && !shard.slots.has(slot) && this.#wanted.get(slot)?.size === group.length) shard.slots.add(slot);
      }),
    ).finally(this.#changed).catch((error: Error) => {
      this.#scheduleSync();
      throw error;
    });
  }

  remove(channels: string[]): void {
    this.#changed();
    for (const channel of channels) {
      const slot = this.#options.slotOf(channel);
      const wanted = this.#wanted.get(slot);
      if (!wanted?.delete(channel)) continue;
      if (wanted.size === 0) this.#wanted.delete(slot);
      const shard = this.#shardOf(slot, false);
      if (wanted.size === 0) shard?.slots.delete(slot);
      shard?.connection.sunsubscribe(channel).catch(() => {
        // Disconnected: the server dropped the subscription with the connection already.
      });
    }
  }

  close(): void {
    this.#closed = true;
    this.#changed();
    clearInterval(this.#healthPing);
    if (this.#retry) clearTimeout(this.#retry);
    for (const { connection } of this.#shards.values()) connection.disconnect();
    this.#shards.clear();
    this.#wanted.clear();
  }

  /** The subscriber of the master owning `slot` now, opened when `open`. */
  #shardOf(slot: number, open = true): Shard | undefined {
    const owner = this.#options.cluster.slots[slot]?.[0];
    if (owner === undefined) return undefined;
    let shard = this.#shards.get(owner);
    if (!shard && open && !this.#closed) {
      shard = { connection: this.#connect(owner), slots: new Set(), losses: 0 };
      this.#shards.set(owner, shard);
    }
    return shard;
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
      const shard = this.#shards.get(nodeKey);
      if (shard?.connection === connection) {
        shard.slots.clear();
        shard.losses++;
      }
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
    if (this.#closed) return;
    if (this.#syncing) {
      this.#again = true;
      return;
    }
    this.#syncing = this.#syncOnce().finally(() => {
      this.#changed();
      this.#syncing = null;
      if (this.#again) {
        this.#again = false;
        this.#sync();
      }
    });
  }

  async #syncOnce(): Promise<void> {
    const { cluster, log } = this.#options;
    if (cluster.status !== 'ready') return;
    const owners = new Set<string>();
    const moved: Array<{ slot: number; shard: Shard; channels: string[] }> = [];
    for (const [slot, wanted] of this.#wanted) {
      const shard = this.#shardOf(slot);
      if (!shard) continue;
      owners.add(cluster.slots[slot]![0]!);
      // Wherever else this slot was subscribed, it is not served from there any more.
      for (const other of this.#shards.values()) if (other !== shard) other.slots.delete(slot);
      if (!shard.slots.has(slot)) moved.push({ slot, shard, channels: [...wanted] });
    }
    // Masters that own none of our slots any more (demoted, or emptied by migration).
    for (const [nodeKey, shard] of this.#shards) {
      if (owners.has(nodeKey)) continue;
      this.#shards.delete(nodeKey);
      shard.connection.disconnect();
    }
    if (moved.length === 0) return;
    const results = await Promise.allSettled(
      moved.map(async ({ slot, shard, channels }) => {
        log.debug({ slot, node: `${shard.connection.options.host}:${shard.connection.options.port}`, channels: channels.length }, 'subscribing a slot on its master');
        const losses = shard.losses;
        await shard.connection.ssubscribe(...channels);
        // Lost again meanwhile: the sync that loss scheduled subscribes (and re-delivers) once more.
        if (shard.losses !== losses) return [];
        shard.slots.add(slot);
        return channels;
      }),
    );
    const resubscribed = results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
    const failed = results.filter((r) => r.status === 'rejected');
    if (resubscribed.length > 0) {
      log.info({ channels: resubscribed.length }, 'shard subscriptions moved to their current masters');
      this.#options.onResubscribed(resubscribed.filter((c) => this.#wanted.get(this.#options.slotOf(c))?.has(c)));
    }
    if (failed.length > 0) {
      log.warn({ slots: failed.length, err: ((failed[0] as PromiseRejectedResult).reason as Error).message }, 'shard subscriptions not restored yet; retrying');
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
