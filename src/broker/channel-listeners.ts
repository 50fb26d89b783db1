/** What subscribes and unsubscribes a channel on Redis (Subscriptions in redis-subscriptions.ts). */
export interface ChannelSubscriber {
  add(channel: string): Promise<void>;
  remove(channel: string): void;
}

/**
 * Listeners per channel, each channel subscribed once for all of them: a listener's add()
 * resolves once the channel's SUBSCRIBE (started by its first listener) is confirmed, and the
 * channel is unsubscribed when its last listener leaves.
 */
export class ChannelListeners<L> {
  readonly #subscriber: ChannelSubscriber;
  readonly #channels = new Map<string, { listeners: Set<L>; subscribed: Promise<void>; waiting: number }>();

  constructor(subscriber: ChannelSubscriber) {
    this.#subscriber = subscriber;
  }

  async add(channel: string, listener: L): Promise<() => void> {
    let entry = this.#channels.get(channel);
    if (!entry) {
      entry = { listeners: new Set(), subscribed: this.#subscriber.add(channel), waiting: 0 };
      this.#channels.set(channel, entry);
    }
    const held = entry;
    // Counted while it waits: another listener leaving meanwhile must not unsubscribe the channel.
    // It gets messages only once subscribed, as its caller expects.
    held.waiting++;
    try {
      await held.subscribed;
    } finally {
      held.waiting--;
    }
    held.listeners.add(listener);
    return () => {
      held.listeners.delete(listener);
      if (held.listeners.size > 0 || held.waiting > 0 || this.#channels.get(channel) !== held) return;
      this.#channels.delete(channel);
      this.#subscriber.remove(channel);
    };
  }

  of(channel: string): ReadonlySet<L> | undefined {
    return this.#channels.get(channel)?.listeners;
  }

  /** Channels with listeners. */
  get size(): number {
    return this.#channels.size;
  }

  clear(): void {
    this.#channels.clear();
  }
}
