import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SubscriptionLedger } from '../../src/broker/subscription-ledger.js';
import type { SubscribeAttempt } from '../../src/broker/subscription-ledger.js';

/**
 * The shard subscribers' bookkeeping, driven through random interleavings of adds, removes,
 * replies, slot-map refreshes and syncs, against a model of the cluster's masters: each has a
 * FIFO connection (commands apply in order) and the set of channels it has subscribed. Faults
 * (a connection lost, a slot migrated) are mixed in for the safety and recovery properties.
 */
const NODES = ['a', 'b', 'c'] as const;
const SLOTS = 4;
/** Two channels per slot, as a book's channel shares its slot with its partition's feed. */
const CHANNELS = Array.from({ length: 2 * SLOTS }, (_, i) => `ch${i}`);
const slotOf = (channel: string) => Number(channel.slice(2)) % SLOTS;

type Op =
  | { kind: 'add'; channel: number }
  | { kind: 'remove'; channel: number }
  | { kind: 'deliver'; node: number }
  | { kind: 'refresh' }
  | { kind: 'sync' }
  | { kind: 'lose'; node: number; closeFirst: boolean }
  | { kind: 'move'; slot: number; to: number };

const healthyOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('add' as const), channel: fc.nat(CHANNELS.length - 1) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('remove' as const), channel: fc.nat(CHANNELS.length - 1) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('deliver' as const), node: fc.nat(NODES.length - 1) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'refresh' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'sync' as const }) },
);
const faultyOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: healthyOp },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('lose' as const), node: fc.nat(NODES.length - 1), closeFirst: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('move' as const), slot: fc.nat(SLOTS - 1), to: fc.nat(NODES.length - 1) }) },
);

type Command = { kind: 'ssubscribe'; attempt: SubscribeAttempt; reply: (ok: boolean) => void } | { kind: 'sunsubscribe'; channel: string };

/** The cluster as the masters see it, and the client's ledger used as ShardSubscribers uses it. */
class Model {
  /** Slot owners as the masters know them, and as the client's slot map last read them. */
  readonly truth: string[] = Array.from({ length: SLOTS }, (_, slot) => NODES[slot % NODES.length]!);
  view = [...this.truth];
  readonly subscribed = new Map<string, Set<string>>(NODES.map((n) => [n, new Set()]));
  readonly queues = new Map<string, Command[]>(NODES.map((n) => [n, []]));
  readonly ledger = new SubscriptionLedger((slot) => this.view[slot]);
  /** Channels whose add has settled (a listener relies on them), still wanted. */
  readonly relied = new Set<string>();
  /** The add each wanted channel's listener waits on: a reply to an earlier add, removed since, resolves nobody. */
  readonly #addedBy = new Map<string, SubscribeAttempt>();
  restores = 0;

  run(op: Op): void {
    switch (op.kind) {
      case 'add': {
        const channel = CHANNELS[op.channel]!;
        if (this.ledger.wants(channel)) return;
        this.ledger.want(channel, slotOf(channel));
        const node = this.view[slotOf(channel)]!;
        const attempt = this.ledger.begin(node, [channel], false);
        this.#addedBy.set(channel, attempt);
        this.#send(node, attempt, (ok) => {
          if (this.ledger.settle(attempt, ok).displaced) this.sync();
          if (this.#addedBy.get(channel) === attempt) this.relied.add(channel);
        });
        return;
      }
      case 'remove': {
        const channel = CHANNELS[op.channel]!;
        if (!this.ledger.wants(channel)) return;
        this.relied.delete(channel);
        this.#addedBy.delete(channel);
        const node = this.ledger.unwant(channel);
        if (node !== null) this.queues.get(node)!.push({ kind: 'sunsubscribe', channel });
        return;
      }
      case 'deliver':
        return this.deliver(NODES[op.node]!);
      case 'refresh':
        this.view = [...this.truth];
        return this.sync();
      case 'sync':
        return this.sync();
      case 'lose':
        return this.lose(NODES[op.node]!, op.closeFirst);
      case 'move': {
        const from = this.truth[op.slot]!;
        const to = NODES[op.to]!;
        if (from === to) return;
        this.truth[op.slot] = to;
        // The old master drops the slot's channels and tells its subscriber (an unsolicited sunsubscribe).
        const held = this.subscribed.get(from)!;
        const dropped = [...held].filter((c) => slotOf(c) === op.slot);
        for (const c of dropped) held.delete(c);
        if (dropped.length > 0) this.ledger.lost(from);
        return;
      }
    }
  }

  /** ShardSubscribers' sync: drop masters owning nothing of ours, subscribe what is due. */
  sync(): void {
    const owners = this.ledger.owners();
    for (const node of NODES) if (!owners.has(node) && this.queues.get(node)!.length + this.subscribed.get(node)!.size > 0) this.lose(node, true);
    for (const { node, channels } of this.ledger.due()) {
      this.restores++;
      const attempt = this.ledger.begin(node, channels, true);
      this.#send(node, attempt, (ok) => {
        if (this.ledger.settle(attempt, ok).displaced) this.sync();
      });
    }
  }

  /** The next command on `node`'s connection reaches it, and its reply comes back. */
  deliver(node: string): void {
    const command = this.queues.get(node)!.shift();
    if (!command) return;
    const held = this.subscribed.get(node)!;
    if (command.kind === 'sunsubscribe') {
      held.delete(command.channel);
      return;
    }
    const owns = command.attempt.channels.every((c) => this.truth[slotOf(c)] === node);
    if (owns) for (const c of command.attempt.channels) held.add(c);
    command.reply(owns);
    // A MOVED reply to SSUBSCRIBE: ioredis emits 'moved', taken as a loss.
    if (!owns) this.ledger.lost(node);
  }

  /** `node`'s connection closes: its subscriptions are gone, the commands in flight fail. */
  lose(node: string, closeFirst: boolean): void {
    this.subscribed.get(node)!.clear();
    if (closeFirst) this.ledger.lost(node);
    const failed = this.queues.get(node)!.splice(0);
    for (const command of failed) if (command.kind === 'ssubscribe') command.reply(false);
    if (!closeFirst) this.ledger.lost(node);
  }

  live(): boolean {
    return this.ledger.live(() => true);
  }

  /** Every relied-on channel is subscribed on the master that owns its slot. */
  delivering(): boolean {
    return [...this.relied].every((c) => this.subscribed.get(this.truth[slotOf(c)]!)!.has(c));
  }

  /** The slot map caught up and every command answered, until a sync has nothing left to do. */
  settleDown(): void {
    for (let round = 0; round < 10; round++) {
      this.view = [...this.truth];
      this.sync();
      while (NODES.some((n) => this.queues.get(n)!.length > 0)) for (const n of NODES) this.deliver(n);
      if (this.ledger.due().length === 0) return;
    }
  }

  #send(node: string, attempt: SubscribeAttempt, reply: (ok: boolean) => void): void {
    this.queues.get(node)!.push({ kind: 'ssubscribe', attempt, reply });
  }
}

describe('the shard subscribers\' ledger', () => {
  it('on a cluster whose slots do not move, never takes a slot for moved, however adds, removes and refreshes interleave', () => {
    fc.assert(
      fc.property(fc.array(healthyOp, { maxLength: 120 }), (ops) => {
        const model = new Model();
        for (const op of ops) {
          model.run(op);
          expect(model.restores, 'no subscription restored').toBe(0);
          if (model.live()) expect(model.delivering(), 'live only while every relied-on channel delivers').toBe(true);
        }
        model.settleDown();
        expect(model.restores).toBe(0);
        expect(model.live()).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('with connections lost and slots migrated, is live only while every relied-on channel delivers, and recovers every wanted one', () => {
    fc.assert(
      fc.property(fc.array(faultyOp, { maxLength: 150 }), (ops) => {
        const model = new Model();
        for (const op of ops) {
          model.run(op);
          if (model.live()) expect(model.delivering(), 'live only while every relied-on channel delivers').toBe(true);
        }
        model.settleDown();
        expect(model.live(), 'live again once the slot map and replies caught up').toBe(true);
        for (const channel of CHANNELS) {
          const owner = model.truth[slotOf(channel)]!;
          const on = NODES.filter((n) => model.subscribed.get(n)!.has(channel));
          expect(on, `${channel} subscribed exactly where wanted`).toEqual(model.ledger.wants(channel) ? [owner] : []);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('confirms channels of one slot added one after the other, whatever order their replies come in', () => {
    const ledger = new SubscriptionLedger(() => 'a');
    ledger.want('book', 7);
    ledger.want('feed', 7);
    const book = ledger.begin('a', ['book'], false);
    const feed = ledger.begin('a', ['feed'], false);
    expect(ledger.settle(feed, true).subscribed).toEqual(['feed']);
    expect(ledger.settle(book, true).subscribed).toEqual(['book']);
    expect(ledger.due()).toEqual([]);
    expect(ledger.live(() => true)).toBe(true);
  });
});
