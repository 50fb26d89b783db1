import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { MIN_HISTORY_RUNS, estimate, learnEtaModel } from '../../src/analytics/eta-model.js';
import { EtaRefresher } from '../../src/analytics/eta-refresher.js';
import type { RunHistory } from '../../src/analytics/queries.js';
import { estimateEnd } from '../../src/progress/derive.js';
import { prng, syntheticRun } from '../../bench/eta-synthetic.js';

function history(count: number, seed = 1): RunHistory[] {
  const random = prng(seed);
  return Array.from({ length: count }, (_, i) => syntheticRun(random, `h-${i}`, i * 1_000_000).history);
}

describe('ETA model', () => {
  it('falls back to the linear estimate of derive.ts without enough history', () => {
    expect(learnEtaModel(history(MIN_HISTORY_RUNS - 1))).toBeNull();
    const state = { status: 'GENERATING', generationStep: 'CHAPTERS', currentChapter: 3, totalChapters: 10, currentSection: 0, totalSections: 2, overallProgress: 38, startTime: 1_000 } as const;
    expect(estimate(null, state, 21_000)).toEqual({ estimatedEndTime: estimateEnd(1_000, 21_000, 38), source: 'linear' });
    expect(estimate(null, { ...state, overallProgress: 0 }, 21_000)).toEqual({ source: 'linear' });
  });

  it('learns the unit each step scales with', () => {
    const model = learnEtaModel(history(100))!;
    expect(model.steps.CHAPTERS?.unit).toBe('section');
    expect(model.steps.OUTLINE?.unit).toBe('chapter');
    expect(model.steps.PROOFREADING?.unit).toBe('chapter');
    expect(model.steps.RESEARCH?.unit).toBe('run');
    // ~1.2 s per section, the synthetic median.
    expect(Math.exp(model.steps.CHAPTERS!.mu)).toBeGreaterThan(1_000);
    expect(Math.exp(model.steps.CHAPTERS!.mu)).toBeLessThan(1_500);
  });

  it('beats the linear estimate on a run after history exists, with a late bound after the estimate', () => {
    const model = learnEtaModel(history(100))!;
    const run = syntheticRun(prng(99), 'new', 5_000_000_000);
    const end = run.start + run.durationMs;
    let learnedError = 0;
    let linearError = 0;
    for (const { state, stepStartedAt } of run.states.slice(1, -1)) {
      const eta = estimate(model, { ...state, stepStartedAt }, state.timestamp);
      expect(eta.source).toBe('learned');
      expect(eta.estimatedEndTimeLate!).toBeGreaterThanOrEqual(eta.estimatedEndTime!);
      const remaining = end - state.timestamp;
      learnedError += Math.abs(eta.estimatedEndTime! - end) / remaining;
      linearError += Math.abs((state.estimatedEndTime ?? state.timestamp) - end) / remaining;
    }
    expect(learnedError).toBeLessThan(linearError);
  });

  it('ends at COMPLETE and has no end for ERROR', () => {
    const model = learnEtaModel(history(20));
    const base = { generationStep: 'COMPLETE', currentChapter: 1, totalChapters: 1, currentSection: 0, totalSections: 0, overallProgress: 100, startTime: 0 } as const;
    expect(estimate(model, { ...base, status: 'COMPLETE' }, 50)).toMatchObject({ estimatedEndTime: 50, estimatedEndTimeLate: 50 });
    expect(estimate(model, { ...base, status: 'ERROR' }, 50).estimatedEndTime).toBeUndefined();
  });
});

describe('ETA refresher', () => {
  it('relearns from its loader and keeps the last model when a refresh fails', async () => {
    let fail = false;
    const refresher = new EtaRefresher({
      load: async () => {
        if (fail) throw new Error('database down');
        return history(30);
      },
      log: pino({ level: 'silent' }),
    });
    expect(refresher.model).toBeNull();
    const model = await refresher.refresh();
    expect(model?.runs).toBe(30);
    fail = true;
    expect(await refresher.refresh()).toBe(model);
  });
});
