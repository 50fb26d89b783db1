// No imports: web/client.ts bundles this for the browser too.

/**
 * Exponential backoff with jitter: a wait between half and all of min(firstMs × 2^attempt,
 * maxMs), so many waiters do not retry in lockstep.
 */
export function jitteredBackoff(attempt: number, firstMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, firstMs * 2 ** attempt);
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}
