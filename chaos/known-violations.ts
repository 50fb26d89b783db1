import type { Invariant, Violation } from './checker.js';

/**
 * Bugs the campaign found that are not fixed yet: each makes its invariant KNOWN instead of
 * FAIL, so `npm test` stays green while the fix is pending. Each names the seed that shows it;
 * remove the entry with the fix (and its regression test).
 */
export interface KnownViolation {
  id: string;
  invariant: Invariant;
  /** What is wrong, precisely enough to write the regression test from. */
  description: string;
  /** A CHAOS_SEED (and mode) whose run shows it. */
  seed: string;
  matches(violation: Violation): boolean;
}

export const KNOWN_VIOLATIONS: readonly KnownViolation[] = [];
