import { estimateEnd, stepProgress } from '../progress/derive.js';
import type { Step } from '../progress/schema.js';
import { estimate } from './eta-model.js';
import type { EtaInput, EtaModel } from './eta-model.js';
import type { RunHistory } from './queries.js';

export const ACCURACY_CHECKPOINTS = [0.1, 0.25, 0.5, 0.75] as const;
const WORK_STEPS: readonly Step[] = ['PLANNING', 'RESEARCH', 'OUTLINE', 'STRUCTURE', 'CHAPTERS', 'PROOFREADING'];

export interface EtaAccuracy {
  /** Completed runs scored (those with every step's exact duration). */
  runs: number;
  checkpoints: Array<{
    /** Fraction of each run's real duration. */
    at: number;
    /** Mean absolute percentage error of the predicted remaining time; null without runs (learned: without a model). */
    learned: number | null;
    linear: number | null;
    /** Share of runs that ended before the late bound. */
    lateCoverage: number | null;
  }>;
}

/**
 * How far the ETA is off on recorded completed runs: each is replayed from its recorded step
 * durations (sections evenly paced within CHAPTERS), and at 10, 25, 50, 75 % of its real
 * duration the learned estimate (the model in use now) and the linear one are compared with
 * the real end. Pure; in-sample when the model learned from the same runs.
 */
export function etaAccuracy(model: EtaModel | null, runs: readonly RunHistory[]): EtaAccuracy {
  const scored = runs.filter((r) => r.durationMs > 0 && WORK_STEPS.every((s) => (r.steps[s] ?? 0) > 0));
  const checkpoints = ACCURACY_CHECKPOINTS.map((fraction) => {
    let learned = 0;
    let linear = 0;
    let covered = 0;
    for (const run of scored) {
      const at = fraction * run.durationMs;
      const remaining = run.durationMs - at;
      const state = stateAt(run, at);
      const progress = stepProgress(state);
      const linearEnd = estimateEnd(0, at, progress);
      linear += Math.abs((linearEnd === undefined ? at : linearEnd) - at - remaining) / remaining;
      if (model !== null) {
        const eta = estimate(model, { ...state, overallProgress: progress }, at);
        const end = eta.estimatedEndTime ?? linearEnd ?? at;
        learned += Math.abs(end - at - remaining) / remaining;
        if ((eta.estimatedEndTimeLate ?? end) >= run.durationMs) covered++;
      }
    }
    const n = scored.length;
    return { at: fraction, learned: n === 0 || model === null ? null : learned / n, linear: n === 0 ? null : linear / n, lateCoverage: n === 0 || model === null ? null : covered / n };
  });
  return { runs: scored.length, checkpoints };
}

/** The run's state at `at` ms after its start, as its recorded step durations place it. */
function stateAt(run: RunHistory, at: number): EtaInput {
  let start = 0;
  const base = { status: 'GENERATING' as const, totalChapters: run.totalChapters, totalSections: run.totalSections, overallProgress: 0, startTime: 0 };
  for (const step of WORK_STEPS) {
    const duration = run.steps[step]!;
    if (at < start + duration || step === 'PROOFREADING') {
      if (step !== 'CHAPTERS') return { ...base, generationStep: step, currentChapter: 0, currentSection: 0, stepStartedAt: start };
      const sections = Math.max(1, run.totalSections);
      const done = Math.floor(((at - start) / duration) * run.totalChapters * sections);
      return {
        ...base,
        generationStep: 'CHAPTERS',
        currentChapter: Math.min(run.totalChapters, Math.floor(done / sections) + 1),
        currentSection: run.totalSections === 0 ? 0 : done % sections,
        stepStartedAt: start,
      };
    }
    start += duration;
  }
  return { ...base, generationStep: 'PROOFREADING', currentChapter: 0, currentSection: 0, stepStartedAt: start };
}
