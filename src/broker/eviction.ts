/**
 * Redis eviction policies and what they can do to the broker's keys. The dirty set and the
 * claimed set have no TTL: an `allkeys-*` policy may evict them under memory pressure, and
 * every book changed since the last snapshot would then never reach Postgres. `volatile-*`
 * policies only evict keys with a TTL: a book's state (which Postgres has up to its last
 * snapshot) and its fence key, whose loss lets a runner that lost its lease publish again
 * until the current one commits (docs/operations.md, "Redis memory": noeviction while generating books).
 * `noeviction` evicts nothing and refuses writes when full (503 `broker_full`).
 */
export function evictsKeysWithoutTtl(policy: string): boolean {
  return policy.startsWith('allkeys-');
}

/** The `maxmemory_policy` field of `INFO memory`, or null when absent (an old or restricted Redis). */
export function maxmemoryPolicy(info: string): string | null {
  const match = /^maxmemory_policy:(\S+)/m.exec(info);
  return match?.[1] ?? null;
}
