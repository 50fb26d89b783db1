/**
 * Where each wanted channel's sharded subscription stands: in flight, confirmed on a master, or
 * lost. Kept per channel, so that adds of channels sharing a slot (a book's channel and its
 * partition feed) confirm each other in any order, and a slot is never taken for moved while
 * its own subscriptions are still in flight. Pure bookkeeping: the caller sends the commands.
 */
export interface SubscribeAttempt {
  readonly node: string;
  readonly channels: readonly string[];
}

type Phase =
  /** Its first SSUBSCRIBE is in flight; nobody relies on it until that settles. */
  | 'adding'
  /** A sync's SSUBSCRIBE is in flight. */
  | 'restoring'
  /** Confirmed on `node`, with no loss of that node since. */
  | 'subscribed'
  /** Must be subscribed (again) by a sync, and its states delivered again. */
  | 'lost';

interface Entry {
  readonly slot: number;
  phase: Phase;
  /** The node last sent an SSUBSCRIBE for it (where an SUNSUBSCRIBE goes). */
  node: string | null;
  attempt: SubscribeAttempt | null;
}

/** A sync's work: channels of one slot to subscribe on the node that owns it. */
export interface DueSlot {
  readonly slot: number;
  readonly node: string;
  readonly channels: string[];
}

export class SubscriptionLedger {
  readonly #ownerOf: (slot: number) => string | undefined;
  readonly #entries = new Map<string, Entry>();

  /** `ownerOf`: the node serving a slot in the current slot map. */
  constructor(ownerOf: (slot: number) => string | undefined) {
    this.#ownerOf = ownerOf;
  }

  get size(): number {
    return this.#entries.size;
  }

  wants(channel: string): boolean {
    return this.#entries.has(channel);
  }

  /** Records `channel` as wanted; until an attempt confirms it, a sync will subscribe it. */
  want(channel: string, slot: number): void {
    if (!this.#entries.has(channel)) this.#entries.set(channel, { slot, phase: 'lost', node: null, attempt: null });
  }

  /** Forgets `channel`; returns the node to SUNSUBSCRIBE it on, if it was ever sent one. */
  unwant(channel: string): string | null {
    const entry = this.#entries.get(channel);
    if (!entry) return null;
    this.#entries.delete(channel);
    return entry.node ?? this.#ownerOf(entry.slot) ?? null;
  }

  /** Records an SSUBSCRIBE of `channels` (one slot) sent to `node`: a first add, or a sync's restore. */
  begin(node: string, channels: readonly string[], restore: boolean): SubscribeAttempt {
    const attempt: SubscribeAttempt = { node, channels };
    for (const channel of channels) {
      const entry = this.#entries.get(channel);
      if (!entry) continue;
      entry.phase = restore ? 'restoring' : 'adding';
      entry.node = node;
      entry.attempt = attempt;
    }
    return attempt;
  }

  /**
   * The reply to `attempt`. Returns the channels it subscribed (still wanted, and neither a loss
   * nor a later attempt superseded it), and whether any of them sits on a node that no longer owns its slot (the
   * slot map changed while it was in flight: a sync must move it).
   */
  settle(attempt: SubscribeAttempt, ok: boolean): { subscribed: string[]; displaced: boolean } {
    const subscribed: string[] = [];
    let displaced = false;
    for (const channel of attempt.channels) {
      const entry = this.#entries.get(channel);
      if (entry?.attempt !== attempt) continue;
      entry.attempt = null;
      entry.phase = ok ? 'subscribed' : 'lost';
      if (!ok) continue;
      subscribed.push(channel);
      if (this.#ownerOf(entry.slot) !== attempt.node) displaced = true;
    }
    return { subscribed, displaced };
  }

  /**
   * `node`'s connection may have lost its subscriptions (it closed, or a slot moved away from it).
   * Attempts in flight there are voided too: a reply confirmed across a loss does not count.
   */
  lost(node: string): void {
    for (const entry of this.#entries.values()) {
      if (entry.node !== node || entry.phase === 'lost') continue;
      entry.phase = 'lost';
      entry.attempt = null;
    }
  }

  /** What a sync subscribes: lost channels, and confirmed ones whose slot moved; by slot, on its owner now. */
  due(): DueSlot[] {
    const bySlot = new Map<number, DueSlot>();
    for (const [channel, entry] of this.#entries) {
      const owner = this.#ownerOf(entry.slot);
      if (owner === undefined) continue;
      const moved = entry.phase === 'subscribed' && entry.node !== owner;
      if (entry.phase !== 'lost' && !moved) continue;
      const due = bySlot.get(entry.slot);
      if (due) due.channels.push(channel);
      else bySlot.set(entry.slot, { slot: entry.slot, node: owner, channels: [channel] });
    }
    return [...bySlot.values()];
  }

  /** The nodes that own a wanted channel's slot now. */
  owners(): Set<string> {
    const owners = new Set<string>();
    for (const entry of this.#entries.values()) {
      const owner = this.#ownerOf(entry.slot);
      if (owner !== undefined) owners.add(owner);
    }
    return owners;
  }

  /**
   * True while every channel anyone relies on is confirmed on the node owning its slot now, and
   * that node's connection is `ready`. First adds in flight do not count: nobody listens yet.
   */
  live(ready: (node: string) => boolean): boolean {
    for (const entry of this.#entries.values()) {
      if (entry.phase === 'adding') continue;
      if (entry.phase !== 'subscribed' || entry.node === null) return false;
      if (this.#ownerOf(entry.slot) !== entry.node || !ready(entry.node)) return false;
    }
    return true;
  }

  clear(): void {
    this.#entries.clear();
  }
}
