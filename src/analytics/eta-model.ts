import { estimateEnd } from '../progress/derive.js';
import type { BookProgress, Step } from '../progress/schema.js';
import { conditionalQuantile, median, quantile } from './lognormal.js';
import type { RunHistory } from './queries.js';

/**
 * An ETA learned from recent completed runs. Each step's duration is log-normal per unit of work,
 * the unit (the run, a chapter, a section) being the one that explains the history best; a run's
 * expected remaining time is the sum of its remaining steps' medians, scaled by the run's own pace
 * so far (trusted more as the run advances); the late bound multiplies the remaining time by the
 * 90th percentile of the model's own errors on the history, at the same stage of a run.
 */
export interface EtaModel {
  /** Completed runs learned from. */
  runs: number;
  steps: Partial<Record<Step, StepModel>>;
  /** Per stage (expected fraction done, LATE_STAGES buckets): remaining-time multiplier of the late bound. */
  late: number[];
}

export type WorkUnit = 'run' | 'chapter' | 'section';

export interface StepModel {
  unit: WorkUnit;
  /** Log of the median duration (ms) per unit. */
  mu: number;
  sigma: number;
}

/** A state as the model reads it; `stepStartedAt`: when its current step began, if the caller knows. */
export type EtaInput = Pick<BookProgress, 'status' | 'generationStep' | 'currentChapter' | 'totalChapters' | 'currentSection' | 'totalSections' | 'overallProgress' | 'startTime'> & {
  stepStartedAt?: number;
};

export interface Eta {
  estimatedEndTime?: number;
  /** The p90 end: the run ends before it 9 times in 10. */
  estimatedEndTimeLate?: number;
  source: 'learned' | 'linear';
}

/** Fewer completed runs than this: no model, the linear estimate stands. */
export const MIN_HISTORY_RUNS = 5;
const WORK_STEPS = ['PLANNING', 'RESEARCH', 'OUTLINE', 'STRUCTURE', 'CHAPTERS', 'PROOFREADING'] as const satisfies readonly Step[];
const UNITS: readonly WorkUnit[] = ['run', 'chapter', 'section'];
const LATE_STAGES = 5;
const LATE_QUANTILE = 0.9;
const MIN_SIGMA = 0.05;
/**
 * How far the run's own pace is trusted: weight done / (done + PACE_PRIOR × total) on the log
 * of observed/expected time so far. Chosen by the replay in bench/eval-eta.ts.
 */
const PACE_PRIOR = 0.15;
const MAX_PACE = 5;

function units(unit: WorkUnit, chapters: number, sections: number): number {
  if (unit === 'run') return 1;
  if (unit === 'chapter') return Math.max(1, chapters);
  return Math.max(1, chapters) * Math.max(1, sections);
}

/** Learns a model from completed runs (newest first or any order); null below MIN_HISTORY_RUNS. */
export function learnEtaModel(history: readonly RunHistory[]): EtaModel | null {
  const runs = history.filter((r) => r.durationMs > 0);
  if (runs.length < MIN_HISTORY_RUNS) return null;
  const steps: EtaModel['steps'] = {};
  for (const step of WORK_STEPS) {
    const seen = runs.filter((r) => (r.steps[step] ?? 0) > 0);
    if (seen.length < MIN_HISTORY_RUNS) continue;
    let best: StepModel | null = null;
    let bestSpread = Infinity;
    for (const unit of UNITS) {
      const logs = seen.map((r) => Math.log(r.steps[step]! / units(unit, r.totalChapters, r.totalSections)));
      const mu = median(logs);
      // Robust spread (MAD): a few slow outliers must not decide the unit or widen every estimate.
      const spread = 1.4826 * median(logs.map((x) => Math.abs(x - mu)));
      if (spread < bestSpread - 1e-9) {
        bestSpread = spread;
        best = { unit, mu, sigma: Math.max(MIN_SIGMA, spread) };
      }
    }
    if (best !== null) steps[step] = best;
  }
  const model: EtaModel = { runs: runs.length, steps, late: Array<number>(LATE_STAGES).fill(1) };
  model.late = calibrateLate(model, runs);
  return model;
}

/** The late multipliers: the p90 of actual/predicted remaining time over the history's replayed checkpoints. */
function calibrateLate(model: EtaModel, runs: readonly RunHistory[]): number[] {
  const ratios: number[][] = Array.from({ length: LATE_STAGES }, () => []);
  const all: number[] = [];
  for (const run of runs) {
    for (const point of checkpoints(run)) {
      const predicted = predict(model, point.state, point.at);
      if (predicted === null || predicted.remaining <= 0) continue;
      const ratio = (run.durationMs - point.at) / predicted.remaining;
      ratios[predicted.stage]!.push(ratio);
      all.push(ratio);
    }
  }
  const overall = all.length > 0 ? Math.max(1, quantile(all, LATE_QUANTILE)) : 1.5;
  return ratios.map((r) => (r.length >= 10 ? Math.max(1, quantile(r, LATE_QUANTILE)) : overall));
}

/** States of a past run at each step's start and middle (and at quarters of CHAPTERS), with times relative to its start. */
function checkpoints(run: RunHistory): Array<{ state: EtaInput; at: number }> {
  const points: Array<{ state: EtaInput; at: number }> = [];
  const base = { status: 'GENERATING' as const, totalChapters: run.totalChapters, totalSections: run.totalSections, overallProgress: 0, startTime: 0 };
  let at = 0;
  for (const step of WORK_STEPS) {
    const duration = run.steps[step];
    if (duration === undefined) continue;
    const fractions = step === 'CHAPTERS' ? [0, 0.25, 0.5, 0.75] : [0, 0.5];
    for (const f of fractions) {
      const done = Math.floor(f * run.totalChapters * Math.max(1, run.totalSections));
      const sections = Math.max(1, run.totalSections);
      const chapter = step === 'CHAPTERS' ? Math.min(run.totalChapters, Math.floor(done / sections) + 1) : 0;
      const section = step === 'CHAPTERS' ? done % sections : 0;
      points.push({ state: { ...base, generationStep: step, currentChapter: chapter, currentSection: run.totalSections === 0 ? 0 : section, stepStartedAt: at }, at: at + f * duration });
    }
    at += duration;
  }
  return points;
}

interface Prediction {
  /** Median remaining time, ms. */
  remaining: number;
  /** Late-bound bucket: the run's expected fraction done. */
  stage: number;
}

function predict(model: EtaModel, state: EtaInput, now: number): Prediction | null {
  const index = WORK_STEPS.indexOf(state.generationStep as (typeof WORK_STEPS)[number]);
  const current = model.steps[state.generationStep];
  if (index < 0 || current === undefined || state.startTime === undefined) return null;
  const { totalChapters: C, totalSections: S } = state;
  const expected = WORK_STEPS.map((step) => {
    const m = model.steps[step];
    return m === undefined ? 0 : Math.exp(m.mu) * units(m.unit, C, S);
  });
  const total = expected.reduce((a, b) => a + b, 0);
  const before = expected.slice(0, index).reduce((a, b) => a + b, 0);
  const after = expected.slice(index + 1).reduce((a, b) => a + b, 0);
  const own = expected[index]!;

  let doneInStep = 0;
  let fraction: number | null = null;
  if (state.generationStep === 'CHAPTERS' && C > 0) {
    const done = S > 0 ? (state.currentChapter - 1) * S + state.currentSection : state.currentChapter - 1;
    fraction = Math.min(1, Math.max(0, done / (C * Math.max(1, S))));
    doneInStep = fraction * own;
  } else if (state.stepStartedAt !== undefined) {
    doneInStep = Math.min(own, Math.max(0, now - state.stepStartedAt));
  }
  const expectedDone = before + doneInStep;
  const elapsed = Math.max(0, now - state.startTime);
  let factor = 1;
  if (expectedDone > 0 && elapsed > 0) {
    const pace = Math.min(MAX_PACE, Math.max(1 / MAX_PACE, elapsed / expectedDone));
    factor = Math.exp((expectedDone / (expectedDone + PACE_PRIOR * total)) * Math.log(pace));
  }
  let remainingInStep: number;
  if (fraction !== null) remainingInStep = factor * (1 - fraction) * own;
  else if (state.stepStartedAt !== undefined) {
    // A step already running for `e` ms: the median of its duration given that it lasts longer than e.
    const e = Math.max(0, now - state.stepStartedAt);
    remainingInStep = conditionalQuantile(current.mu + Math.log(units(current.unit, C, S) * factor), current.sigma, e, 0.5) - e;
  } else remainingInStep = factor * own;
  const remaining = Math.max(0, remainingInStep + factor * after);
  const stage = Math.min(LATE_STAGES - 1, Math.floor((total > 0 ? expectedDone / total : 0) * LATE_STAGES));
  return { remaining, stage };
}

/**
 * The end of the run in `state` at `now`: learned when the model knows the current step, else
 * the linear estimate of progress/derive.ts (no late bound). COMPLETE: now; ERROR: none. Pure,
 * no I/O: the model is refreshed in the background (eta-refresher.ts).
 */
export function estimate(model: EtaModel | null, state: EtaInput, now: number): Eta {
  const source = model === null ? 'linear' : 'learned';
  if (state.status === 'COMPLETE') return { estimatedEndTime: now, estimatedEndTimeLate: now, source };
  if (state.status === 'ERROR') return { source };
  const predicted = model === null ? null : predict(model, state, now);
  if (predicted === null) {
    const linear = state.startTime === undefined ? undefined : estimateEnd(state.startTime, now, state.overallProgress);
    return linear === undefined ? { source: 'linear' } : { estimatedEndTime: linear, source: 'linear' };
  }
  const late = model!.late[predicted.stage] ?? 1;
  return {
    estimatedEndTime: Math.round(now + predicted.remaining),
    estimatedEndTimeLate: Math.round(now + predicted.remaining * late),
    source: 'learned',
  };
}
