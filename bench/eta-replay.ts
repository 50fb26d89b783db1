import { estimate, learnEtaModel } from '../src/analytics/eta-model.js';
import type { EtaModel } from '../src/analytics/eta-model.js';
import type { RunHistory } from '../src/analytics/queries.js';
import { prng, syntheticRun } from './eta-synthetic.js';
import type { SyntheticRun } from './eta-synthetic.js';

export const CHECKPOINTS = [0.1, 0.25, 0.5, 0.75] as const;

export interface ReplayOptions {
  seed: number;
  runs: number;
  /** Runs before this index only teach the model; they are not scored. */
  warmup: number;
  /** The model is relearned every this many runs (the background refresh). */
  refreshEvery: number;
  /** Completed runs the model learns from (the most recent). */
  historyLimit: number;
}

export const DEFAULT_REPLAY: ReplayOptions = { seed: 23, runs: 400, warmup: 40, refreshEvery: 10, historyLimit: 200 };

export interface EstimatorScore {
  /** Mean absolute percentage error of the predicted remaining time, per checkpoint. */
  mape: number[];
  /** Share of (run, checkpoint) pairs with no estimate at all (scored as 100 % error). */
  missing: number;
  /** Share of consecutive updates whose estimated end moved later by more than 10 % of the remaining time then predicted. */
  jumpsLater: number;
  /** Share of runs with at least one such jump. */
  runsWithJump: number;
}

export interface ReplayReport {
  options: ReplayOptions;
  scored: number;
  learned: EstimatorScore & { lateCoverage: number; lateCoverageAt: number[] };
  linear: EstimatorScore;
  floors: Array<{ name: string; value: number; limit: string; pass: boolean }>;
}

type Estimator = (point: SyntheticRun['states'][number]) => { end?: number; late?: number };

/**
 * Replays synthetic runs one after another; each is estimated with the model learned from the
 * runs completed before it (refreshed every `refreshEvery`), and with the linear estimate every
 * state carries (progress/derive.ts), both as computed at the state's commit.
 */
export function replayEta(options: ReplayOptions = DEFAULT_REPLAY): ReplayReport {
  const random = prng(options.seed);
  const history: RunHistory[] = [];
  let model: EtaModel | null = null;
  let start = Date.UTC(2026, 0, 1);
  const learnedPoints: Array<{ run: SyntheticRun; estimator: Estimator }> = [];
  const linearPoints: Array<{ run: SyntheticRun; estimator: Estimator }> = [];
  for (let i = 0; i < options.runs; i++) {
    if (i % options.refreshEvery === 0) model = learnEtaModel(history.slice(-options.historyLimit));
    const run = syntheticRun(random, `book-${i}`, start);
    start += run.durationMs + 1_000;
    if (i >= options.warmup) {
      const frozen = model;
      learnedPoints.push({
        run,
        estimator: ({ state, stepStartedAt }) => {
          const eta = estimate(frozen, { ...state, stepStartedAt }, state.timestamp);
          return { end: eta.estimatedEndTime, late: eta.estimatedEndTimeLate };
        },
      });
      linearPoints.push({ run, estimator: ({ state }) => ({ end: state.status === 'COMPLETE' ? state.timestamp : state.estimatedEndTime }) });
    }
    history.push(run.history);
  }
  const learned = score(learnedPoints);
  const linear = score(linearPoints);
  const coverage = lateCoverage(learnedPoints);
  const floors = [
    ...[0, 1].map((k) => ({
      name: `learned MAPE at ${CHECKPOINTS[k]! * 100} % ≤ 0.5 × linear`,
      value: learned.mape[k]! / linear.mape[k]!,
      limit: '≤ 0.5',
      pass: learned.mape[k]! <= 0.5 * linear.mape[k]!,
    })),
    { name: 'late bound covers 80–95 % of runs', value: coverage.overall, limit: '0.80–0.95', pass: coverage.overall >= 0.8 && coverage.overall <= 0.95 },
  ];
  return { options, scored: learnedPoints.length, learned: { ...learned, lateCoverage: coverage.overall, lateCoverageAt: coverage.at }, linear, floors };
}

/** The latest state committed at or before `at`. */
function stateAt(run: SyntheticRun, at: number): SyntheticRun['states'][number] {
  let found = run.states[0]!;
  for (const point of run.states) {
    if (point.state.timestamp > at) break;
    found = point;
  }
  return found;
}

function score(points: ReadonlyArray<{ run: SyntheticRun; estimator: Estimator }>): EstimatorScore {
  const errors: number[][] = CHECKPOINTS.map(() => []);
  let missing = 0;
  let pairs = 0;
  let jumps = 0;
  let runsWithJump = 0;
  for (const { run, estimator } of points) {
    const end = run.start + run.durationMs;
    CHECKPOINTS.forEach((fraction, k) => {
      const at = run.start + fraction * run.durationMs;
      const predicted = estimator(stateAt(run, at)).end;
      if (predicted === undefined) missing++;
      const remaining = predicted === undefined ? 0 : Math.max(0, predicted - at);
      errors[k]!.push(Math.abs(remaining - (end - at)) / (end - at));
    });
    let previous: { at: number; end: number } | null = null;
    let jumped = false;
    for (const point of run.states) {
      if (point.state.status === 'COMPLETE') break;
      const predicted = estimator(point).end;
      if (predicted === undefined) continue;
      const at = point.state.timestamp;
      if (previous !== null) {
        pairs++;
        if (predicted - previous.end > 0.1 * Math.max(1, previous.end - previous.at)) {
          jumps++;
          jumped = true;
        }
      }
      previous = { at, end: predicted };
    }
    if (jumped) runsWithJump++;
  }
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  return { mape: errors.map(mean), missing: missing / (points.length * CHECKPOINTS.length), jumpsLater: jumps / Math.max(1, pairs), runsWithJump: runsWithJump / Math.max(1, points.length) };
}

/** Share of (run, checkpoint) pairs where the run ended at or before the late bound given then. */
function lateCoverage(points: ReadonlyArray<{ run: SyntheticRun; estimator: Estimator }>): { overall: number; at: number[] } {
  const at = CHECKPOINTS.map((fraction) => {
    let covered = 0;
    for (const { run, estimator } of points) {
      const late = estimator(stateAt(run, run.start + fraction * run.durationMs)).late;
      if (late !== undefined && run.start + run.durationMs <= late) covered++;
    }
    return covered / Math.max(1, points.length);
  });
  return { overall: at.reduce((a, b) => a + b, 0) / at.length, at };
}
