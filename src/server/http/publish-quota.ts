import type { MiddlewareHandler } from 'hono';
import { Refusal } from '../../refusal.js';
import type { AppEnv } from './auth.js';

/** A bucket holds this many seconds' worth of publishes: a tenant may burst to twice its rate. */
const BURST_SECONDS = 2;
/** Past this many tenants, buckets that have refilled (idle tenants) are forgotten. */
const MAX_IDLE_BUCKETS = 10_000;

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * MAX_PUBLISHES_PER_SECOND_PER_TENANT: a token bucket per tenant, in this process. One tenant
 * flooding gets 429 with Retry-After; other tenants' publishes and every delivery go on.
 */
export class TenantQuota {
  readonly #perSecond: number;
  readonly #capacity: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(perSecond: number, now: () => number = Date.now) {
    this.#perSecond = perSecond;
    this.#capacity = perSecond * BURST_SECONDS;
    this.#now = now;
  }

  /** Takes one publish from `tenant`'s bucket: 0 when allowed, else the seconds until one is. */
  take(tenant: string): number {
    const now = this.#now();
    const bucket = this.#buckets.get(tenant) ?? { tokens: this.#capacity, at: now };
    bucket.tokens = Math.min(this.#capacity, bucket.tokens + ((now - bucket.at) / 1000) * this.#perSecond);
    bucket.at = now;
    if (!this.#buckets.has(tenant)) {
      if (this.#buckets.size >= MAX_IDLE_BUCKETS) this.#forgetIdle(now);
      this.#buckets.set(tenant, bucket);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.#perSecond));
  }

  #forgetIdle(now: number): void {
    for (const [tenant, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.#perSecond >= this.#capacity) this.#buckets.delete(tenant);
    }
  }
}

/** Refuses a publish past its tenant's quota (after authentication: the caller's tenant is known). */
export function publishQuota(quota: TenantQuota | null): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (quota !== null && c.req.method === 'POST') {
      const tenant = c.get('caller').tenant;
      const wait = quota.take(tenant ?? '');
      if (wait > 0) {
        throw new Refusal(429, 'rate_limited', `${tenant === null ? 'this server' : `tenant ${tenant}`} publishes more than MAX_PUBLISHES_PER_SECOND_PER_TENANT allows`, { retryAfterSeconds: wait });
      }
    }
    await next();
  };
}
