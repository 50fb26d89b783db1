import type { BookProgress } from '../progress/schema.js';

/** "chapter 2/10", "-" before chapters are counted. */
export function chapterText(state: BookProgress): string {
  return state.totalChapters > 0 ? `chapter ${state.currentChapter}/${state.totalChapters}` : '-';
}

/** "1h 02m", "3m 20s", "45s", "< 1s". */
export function durationText(ms: number): string {
  if (ms < 1_000) return '< 1s';
  const seconds = Math.round(ms / 1_000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, '0')}m`;
}

/** Time left by the server's estimate; "-" while it has none, "done" once finished. */
export function etaText(state: BookProgress, now: number): string {
  if (state.status === 'COMPLETE') return 'done';
  if (state.status === 'ERROR' || state.estimatedEndTime === undefined) return '-';
  return durationText(Math.max(0, state.estimatedEndTime - now));
}

/** One plain line for logs and pipes: every field a script might grep, in a fixed order. */
export function stateLine(state: BookProgress, now: number): string {
  const parts = [
    state.bookId,
    state.status,
    state.generationStep,
    `${state.overallProgress.toFixed(1)}%`,
    chapterText(state),
    `eta ${etaText(state, now)}`,
    `v${state.version}`,
  ];
  const note = state.status === 'ERROR' ? (state.error ?? state.message) : state.message;
  return note === '' ? parts.join(' ') : `${parts.join(' ')} ${JSON.stringify(note)}`;
}
