import { BookProgressSchema, isTerminal } from './schema.js';
import type { BookProgress, ProgressUpdate, Step } from './schema.js';
import { invalidProgress } from './errors.js';

/** Where each step starts and ends on the 0-100 bar; CHAPTERS takes most of the run. */
const STEP_RANGES: Record<Step, readonly [number, number]> = {
  PLANNING: [0, 5],
  RESEARCH: [5, 15],
  OUTLINE: [15, 20],
  STRUCTURE: [20, 25],
  CHAPTERS: [25, 90],
  PROOFREADING: [90, 99],
  COMPLETE: [100, 100],
};

/** Overall progress from the step and the chapter/section counters (1-based: "writing chapter 2" means 1 is done). */
export function stepProgress(s: Pick<BookProgress, 'generationStep' | 'currentChapter' | 'totalChapters' | 'currentSection' | 'totalSections'>): number {
  const [start, end] = STEP_RANGES[s.generationStep];
  if (s.generationStep !== 'CHAPTERS' || s.totalChapters === 0) return start;
  const sectionFraction = s.totalSections > 0 ? s.currentSection / s.totalSections : 0;
  const chaptersDone = Math.max(0, s.currentChapter - 1) + sectionFraction;
  const fraction = Math.min(1, chaptersDone / s.totalChapters);
  return round1(start + (end - start) * fraction);
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

/** Linear estimate from the time spent so far; undefined until there is something to extrapolate. */
export function estimateEnd(startTime: number, now: number, progress: number): number | undefined {
  if (progress <= 0 || progress >= 100 || now <= startTime) return undefined;
  const elapsed = now - startTime;
  return Math.round(now + (elapsed * (100 - progress)) / progress);
}

/** True when `next` begins a run: the book's first state, or the first after a terminal one. */
export function startsRun(previous: BookProgress | null, next: BookProgress): boolean {
  return previous === null || (isTerminal(previous.status) && !isTerminal(next.status));
}

const EMPTY: Omit<BookProgress, 'bookId' | 'version' | 'timestamp'> = {
  status: 'PLANNING',
  generationStep: 'PLANNING',
  currentChapter: 0,
  totalChapters: 0,
  currentSection: 0,
  totalSections: 0,
  overallProgress: 0,
  message: '',
};

/** A learned end for a running state (null: none; the linear estimate stands). Pure and fast: it runs on every publish. */
export type EndEstimator = (state: BookProgress) => { estimatedEndTime: number; estimatedEndTimeLate?: number } | null;

/**
 * The state after applying `update` to `previous` (null: the book has no state yet, and it
 * gets `tenant`).
 * A run starts with the first update or the first non-terminal update after a terminal one;
 * within a run overall progress never goes down. Throws an `invalid_progress` Refusal when the merged
 * state breaks the schema (e.g. currentChapter > totalChapters).
 */
export function nextState(
  bookId: string,
  previous: BookProgress | null,
  update: ProgressUpdate,
  now: number,
  minVersion = 0,
  tenant?: string,
  estimator?: EndEstimator,
): BookProgress {
  const base: BookProgress = previous ?? { ...EMPTY, bookId, version: 0, timestamp: now, ...(tenant === undefined ? {} : { tenant }) };
  const status = update.status ?? (update.generationStep === 'COMPLETE' ? 'COMPLETE' : base.status);
  const newRun = previous === null || (isTerminal(previous.status) && !isTerminal(status));

  const merged: BookProgress = {
    ...(newRun ? { ...EMPTY, bookId } : base),
    ...update,
    bookId,
    status,
    timestamp: now,
    version: Math.max(base.version, minVersion) + 1,
  };
  if (newRun) merged.startTime = update.startTime ?? now;
  // A book's tenant is fixed by its first state: every run keeps it (the schema puts it back before `version`).
  if (base.tenant !== undefined) merged.tenant = base.tenant;
  if (status === 'COMPLETE') {
    merged.generationStep = 'COMPLETE';
    merged.currentChapter = merged.totalChapters;
    merged.currentSection = merged.totalSections;
  }
  if (status !== 'ERROR') delete merged.error;
  // Computed when a state is answered (progress/stall.ts), never stored.
  delete merged.stalledSince;

  const floor = newRun ? 0 : base.overallProgress;
  const derived = status === 'COMPLETE' ? 100 : (update.overallProgress ?? stepProgress(merged));
  merged.overallProgress = Math.max(floor, derived);

  // The late bound is the learned model's alone: a publisher's own estimate or the linear one has none.
  delete merged.estimatedEndTimeLate;
  if (status === 'COMPLETE') merged.estimatedEndTime = now;
  else if (status === 'ERROR') delete merged.estimatedEndTime;
  else if (update.estimatedEndTime === undefined) {
    const learned = estimator?.(merged) ?? null;
    const eta = learned?.estimatedEndTime ?? (merged.startTime === undefined ? undefined : estimateEnd(merged.startTime, now, merged.overallProgress));
    if (eta === undefined) delete merged.estimatedEndTime;
    else merged.estimatedEndTime = eta;
    if (learned?.estimatedEndTimeLate !== undefined) merged.estimatedEndTimeLate = Math.max(eta ?? 0, learned.estimatedEndTimeLate);
  }

  const checked = BookProgressSchema.safeParse(merged);
  if (!checked.success) throw invalidProgress(checked.error, 'progress');
  return checked.data;
}
