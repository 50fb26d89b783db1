import { z } from 'zod';
import { STEPS, isTerminal } from '../progress/schema.js';
import type { BookProgress, Status, Step } from '../progress/schema.js';

/**
 * Run timelines derived from a book's committed states, one state after another.
 *
 * Recording choice. A state holds only where a run is now (step, chapter, section, commit
 * `timestamp`, run `startTime`), not when its earlier steps started, so the latest state alone
 * cannot tell a step's duration. The timeline is therefore folded from the per-book feed (every
 * committed version, in commit order, drained in batches off the publish path), and the fold's
 * cursor is kept in the run's row, so a batch, a restart or another process continues exactly
 * where the last batch ended. Where the feed skipped versions (a gap after a reconnect, or a
 * snapshot round's latest states fed in as a fallback) nothing is dropped or invented: a
 * transition seen across a gap is recorded at the first state that shows it, marked
 * `exact: false` (it happened between the two observed commits); aggregates use exact spans only.
 * A step no observed state shows has no span (it may also have been skipped by a resumed run).
 */

/** A finished step, chapter or section of a run; `exact` when both ends were seen at their own commit. */
export interface Span {
  bookId: string;
  runStartedAt: number;
  tenant: string | null;
  kind: 'step' | 'chapter' | 'section';
  /** The step; CHAPTERS for chapter and section spans. */
  step: Step;
  /** 0 for step spans. */
  chapter: number;
  /** 0 for step and chapter spans. */
  section: number;
  startedAt: number;
  endedAt: number;
  exact: boolean;
}

const Mark = z.object({ at: z.number(), exact: z.boolean() });
const Opened = Mark.extend({ number: z.number().int() });

/** Where the fold of a run stands after its last observed state: stored in the run's row. */
export const CursorSchema = z.object({
  version: z.number().int(),
  timestamp: z.number(),
  step: z.enum(STEPS),
  stepStart: Mark,
  chapter: Opened.nullable(),
  section: Opened.extend({ chapter: z.number().int() }).nullable(),
  /** The highest chapter closed: never opened again. */
  closedChapter: z.number().int(),
});
export type Cursor = z.infer<typeof CursorSchema>;

/** One run of a book as recorded so far; keyed by (bookId, startedAt). */
export interface RunRecord {
  bookId: string;
  tenant: string | null;
  startedAt: number;
  status: Status;
  endedAt: number | null;
  error: string | null;
  totalChapters: number;
  totalSections: number;
  version: number;
  cursor: Cursor;
}

export interface Observation {
  /** The run the state belongs to, after the state. */
  run: RunRecord;
  /** Spans the state finished. */
  spans: Span[];
}

const CHAPTERS_INDEX = STEPS.indexOf('CHAPTERS');

/**
 * Folds one committed state into the book's last run (null: none recorded). A state not newer
 * than the run's version is ignored (run returned unchanged, no spans). A state starts a new
 * run when the last one ended and it does not, or when it carries another `startTime`.
 */
export function observe(last: RunRecord | null, state: BookProgress): Observation {
  if (last !== null && state.version <= last.version) return { run: last, spans: [] };
  const afterEnd = last === null || (isTerminal(last.status) && !isTerminal(state.status));
  // A publisher that sets no startTime: a run is keyed by its first observed commit.
  const startedAt = state.startTime ?? (afterEnd ? state.timestamp : last.startedAt);
  if (afterEnd || startedAt !== last.startedAt) return { run: startRun(state, startedAt), spans: [] };
  if (isTerminal(last.status)) return { run: { ...last, version: state.version, cursor: { ...last.cursor, version: state.version, timestamp: state.timestamp } }, spans: [] };

  const exact = state.version === last.cursor.version + 1;
  const at = state.timestamp;
  const spans: Span[] = [];
  const span = (kind: Span['kind'], step: Step, chapter: number, section: number, start: { at: number; exact: boolean }): void => {
    spans.push({ bookId: state.bookId, runStartedAt: last.startedAt, tenant: last.tenant, kind, step, chapter, section, startedAt: start.at, endedAt: at, exact: exact && start.exact });
  };

  const cursor: Cursor = { ...last.cursor, version: state.version, timestamp: at };
  const error = state.status === 'ERROR';
  // An ERROR leaves what was running unfinished: no span ends there.
  if (!error) {
    const stepIndex = STEPS.indexOf(state.generationStep);
    const past = stepIndex > CHAPTERS_INDEX;
    const inChapters = stepIndex === CHAPTERS_INDEX;
    const { currentChapter: c, currentSection: s, totalSections } = state;
    if (cursor.section !== null) {
      const open = cursor.section;
      const finished = past || c > open.chapter || (c === open.chapter && s >= open.number);
      if (finished) span('section', 'CHAPTERS', open.chapter, open.number, open);
      if (finished || !inChapters || c !== open.chapter) cursor.section = null;
    }
    if (cursor.chapter !== null) {
      const open = cursor.chapter;
      const finished = past || c > open.number || (c === open.number && totalSections > 0 && s >= totalSections);
      if (finished) {
        span('chapter', 'CHAPTERS', open.number, 0, open);
        cursor.closedChapter = Math.max(cursor.closedChapter, open.number);
      }
      if (finished || !inChapters || c !== open.number) cursor.chapter = null;
    }
    if (state.generationStep !== cursor.step) {
      span('step', cursor.step, 0, 0, cursor.stepStart);
      cursor.step = state.generationStep;
      cursor.stepStart = { at, exact };
    }
    openChapterAndSection(cursor, state, { at, exact });
  }

  const run: RunRecord = {
    ...last,
    status: state.status,
    endedAt: isTerminal(state.status) ? at : null,
    error: error ? (state.error ?? '') : null,
    totalChapters: state.totalChapters,
    totalSections: state.totalSections,
    version: state.version,
    cursor,
  };
  return { run, spans };
}

function startRun(state: BookProgress, startedAt: number): RunRecord {
  // Only the run's own first commit shows when its first step started; otherwise it began unseen.
  const first = { at: state.timestamp, exact: state.timestamp === startedAt };
  const cursor: Cursor = { version: state.version, timestamp: state.timestamp, step: state.generationStep, stepStart: first, chapter: null, section: null, closedChapter: 0 };
  if (!isTerminal(state.status)) openChapterAndSection(cursor, state, first);
  return {
    bookId: state.bookId,
    tenant: state.tenant ?? null,
    startedAt,
    status: state.status,
    endedAt: isTerminal(state.status) ? state.timestamp : null,
    error: state.status === 'ERROR' ? (state.error ?? '') : null,
    totalChapters: state.totalChapters,
    totalSections: state.totalSections,
    version: state.version,
    cursor,
  };
}

/** "Writing chapter c, s sections done": chapter c and its section s + 1 are running. */
function openChapterAndSection(cursor: Cursor, state: BookProgress, mark: { at: number; exact: boolean }): void {
  if (state.generationStep !== 'CHAPTERS') return;
  const { currentChapter: c, currentSection: s, totalSections } = state;
  if (c < 1 || c <= cursor.closedChapter) return;
  cursor.chapter ??= { number: c, ...mark };
  if (cursor.section === null && (totalSections === 0 || s < totalSections)) cursor.section = { chapter: c, number: s + 1, ...mark };
}

/** A batch folded: each run's latest record (one per run), and every span the batch finished. */
export interface FoldedBatch {
  runs: RunRecord[];
  spans: Span[];
  /** Keys (`runKey`) of the runs that ended (COMPLETE or ERROR) in this batch. */
  ended: Set<string>;
}

/** A run's key: its book and start. */
export function runKey(run: Pick<RunRecord, 'bookId' | 'startedAt'>): string {
  return `${run.bookId}\u0000${run.startedAt}`;
}

/**
 * Folds a batch of committed states (any books, any order, duplicates allowed) into the runs
 * given in `last` (each book's last recorded run). Pure: the same input gives the same output,
 * so a retried batch writes the same rows.
 */
export function foldBatch(last: ReadonlyMap<string, RunRecord>, states: readonly BookProgress[]): FoldedBatch {
  const byBook = new Map<string, BookProgress[]>();
  for (const state of states) {
    const list = byBook.get(state.bookId);
    if (list === undefined) byBook.set(state.bookId, [state]);
    else list.push(state);
  }
  const runs = new Map<string, RunRecord>();
  const spans: Span[] = [];
  const ended = new Set<string>();
  for (const [bookId, list] of byBook) {
    list.sort((a, b) => a.version - b.version);
    let run = last.get(bookId) ?? null;
    for (const state of list) {
      const next = observe(run, state);
      spans.push(...next.spans);
      const wasRunning = run === null || run.startedAt !== next.run.startedAt || !isTerminal(run.status);
      run = next.run;
      if (wasRunning && isTerminal(run.status)) ended.add(runKey(run));
      if (run !== last.get(bookId)) runs.set(runKey(run), run);
    }
  }
  return { runs: [...runs.values()], spans, ended };
}
