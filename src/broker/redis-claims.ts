import type { Cluster, Redis } from 'ioredis';
import type { DirtyClaims } from './broker.js';
import type { RedisKeys } from './keys.js';
import { CLAIM_DIRTY, SETTLE_CLAIM } from './scripts.js';

/**
 * Partitions claimed per call on a cluster: claiming stops once about one upsert's worth of
 * books is held, so other processes claim the rest of the round meanwhile.
 */
const CLAIM_TARGET_BOOKS = 1_000;
/** Partition claims sent at once. */
const CLAIM_BATCH = 32;

type ClaimingRedis = (Redis | Cluster) & {
  progressClaimDirty(dirty: string, claimed: string, owner: string, round: string, ownerId: string, leaseMs: number, roundNumber: string): Promise<string[] | null>;
  progressSettleClaim(dirty: string, claimed: string, owner: string, ownerId: string, done: string): Promise<number>;
};

/** Runs a command and turns its failure into the broker's errors. */
export type RedisCall = <T>(command: () => Promise<T>) => Promise<T>;

/** The snapshotter's claims on the dirty set, over the broker's command connection. */
export class RedisDirtyClaims implements DirtyClaims {
  readonly #redis: ClaimingRedis;
  readonly #keys: RedisKeys;
  readonly #call: RedisCall;
  /** Partitions each owner claimed through this broker, for settleClaim. */
  readonly #claims = new Map<string, number[]>();

  constructor(redis: Redis | Cluster, keys: RedisKeys, call: RedisCall) {
    this.#redis = redis as ClaimingRedis;
    this.#redis.defineCommand('progressClaimDirty', { numberOfKeys: 4, lua: CLAIM_DIRTY });
    this.#redis.defineCommand('progressSettleClaim', { numberOfKeys: 3, lua: SETTLE_CLAIM });
    this.#keys = keys;
    this.#call = call;
  }

  /**
   * One Redis: the one claim. A cluster: the partitions free this round, claimed in a random
   * order until about one upsert's worth of books is held (in a round; all of them outside
   * one), so processes share a round's partitions. Partitions on a node that does not answer
   * are left for the next claim; null when no partition could be claimed.
   */
  async claimDirty(owner: string, leaseMs: number, round: number | null): Promise<string[] | null> {
    const keys = this.#keys;
    const roundArg = round === null ? '' : String(round);
    const claimOne = (p: number) =>
      this.#redis.progressClaimDirty(keys.dirty(p), keys.claimed(p), keys.claimOwner(p), keys.claimRound(p), owner, leaseMs, roundArg);
    if (keys.partitions === 1) return this.#call(() => claimOne(0));
    const order = shuffled(keys.partitions);
    const claimed: number[] = [];
    const books: string[] = [];
    let failure: unknown = null;
    let answered = 0;
    for (let i = 0; i < order.length; i += CLAIM_BATCH) {
      const batch = order.slice(i, i + CLAIM_BATCH);
      const results = await Promise.allSettled(batch.map((p) => claimOne(p)));
      results.forEach((result, j) => {
        if (result.status === 'rejected') {
          failure = result.reason;
          return;
        }
        answered++;
        if (result.value === null) return;
        claimed.push(batch[j] as number);
        books.push(...result.value);
      });
      if (round !== null && books.length >= CLAIM_TARGET_BOOKS) break;
    }
    this.#claims.set(owner, [...new Set([...(this.#claims.get(owner) ?? []), ...claimed])]);
    if (answered === 0 && failure !== null) return this.#call(() => Promise.reject(failure));
    return claimed.length === 0 ? null : books;
  }

  async settleClaim(owner: string, done: boolean): Promise<void> {
    const keys = this.#keys;
    const partitions = keys.partitions === 1 ? [0] : (this.#claims.get(owner) ?? []);
    this.#claims.delete(owner);
    const settle = (p: number) => this.#redis.progressSettleClaim(keys.dirty(p), keys.claimed(p), keys.claimOwner(p), owner, done ? '1' : '0');
    await this.#call(() => Promise.all(partitions.map(settle)));
  }
}

/** 0 … n-1 in a random order. */
function shuffled(n: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  return order;
}
