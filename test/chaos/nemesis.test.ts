import { describe, expect, it } from 'vitest';
import { FAULTS_OF, planFaults } from '../../chaos/nemesis.js';
import { parseDuration, seedFrom } from '../../chaos/run.js';

describe('the chaos schedule', () => {
  it('is the same for the same seed, and another for another', () => {
    expect(planFaults(7, 'single', 600_000, 3)).toEqual(planFaults(7, 'single', 600_000, 3));
    expect(planFaults(8, 'single', 600_000, 3)).not.toEqual(planFaults(7, 'single', 600_000, 3));
  });

  it('overlaps faults of different resources, never two servers of three down at once, and draws every kind of the mode', () => {
    for (const mode of ['single', 'cluster'] as const) {
      const plan = planFaults(1234, mode, 600_000, 3);
      expect(new Set(plan.map((f) => f.kind))).toEqual(new Set(FAULTS_OF[mode]));
      const overlapping = plan.filter((f, i) => plan.slice(0, i).some((g) => g.at + g.holdMs > f.at));
      expect(overlapping.length).toBeGreaterThan(10);
      for (const f of plan) {
        const serversDown = plan.filter((g) => g.kind.startsWith('server-') && g.at <= f.at && g.at + g.holdMs + 6_000 > f.at);
        expect(new Set(serversDown.map((g) => g.target)).size).toBeLessThanOrEqual(2);
        expect(f.at + f.holdMs).toBeLessThan(600_000);
      }
    }
  });

  it('reads durations and seeds as the CLI takes them', () => {
    expect([parseDuration('60s'), parseDuration('10m'), parseDuration('1500ms'), parseDuration('2')]).toEqual([60_000, 600_000, 1_500, 2_000]);
    expect(() => parseDuration('soon')).toThrow('--duration');
    expect(seedFrom('123')).toBe(123);
    expect(() => seedFrom('abc')).toThrow('CHAOS_SEED');
    expect(seedFrom(undefined)).toBeGreaterThanOrEqual(0);
  });
});
