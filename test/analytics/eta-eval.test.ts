import { describe, expect, it } from 'vitest';
import { DEFAULT_REPLAY, replayEta } from '../../bench/eta-replay.js';

describe('npm run eval:eta', () => {
  it('meets its floors with the fixed seed: learned MAPE ≤ 0.5 × linear at 10 % and 25 %, late bound covering 80-95 %', () => {
    const report = replayEta({ ...DEFAULT_REPLAY, runs: 200 });
    for (const floor of report.floors) expect(floor, floor.name).toMatchObject({ pass: true });
    expect(report.learned.mape[0]!).toBeLessThanOrEqual(0.5 * report.linear.mape[0]!);
    expect(report.learned.mape[1]!).toBeLessThanOrEqual(0.5 * report.linear.mape[1]!);
    expect(report.learned.lateCoverage).toBeGreaterThanOrEqual(0.8);
    expect(report.learned.lateCoverage).toBeLessThanOrEqual(0.95);
  });
});
