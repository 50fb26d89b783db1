import type { BookProgress, ConnectionState } from './client.js';

export const STEP_LABELS: Record<BookProgress['generationStep'], string> = {
  PLANNING: 'Planning',
  RESEARCH: 'Research',
  OUTLINE: 'Outline',
  STRUCTURE: 'Structure',
  CHAPTERS: 'Chapters',
  PROOFREADING: 'Proofreading',
  COMPLETE: 'Complete',
};

export const CONNECTION_LABELS: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  polling: 'Polling every 3 s',
  offline: 'Offline: retrying',
  closed: 'Finished',
};

/** "< 1 s", "12 s", "3 min 4 s", "2 h 5 min". */
export function duration(ms: number): string {
  if (ms < 500) return '< 1 s';
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  if (seconds >= 3600) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${seconds % 60} s`;
}

/**
 * "about 2 min left", "about 2 min left (up to 3 min)" when the learned ETA gives a late bound,
 * or '' when there is no estimate. `steady`: the ends as a SteadyEnd shows them (no jump).
 */
export function eta(progress: BookProgress, now = Date.now(), steady?: { end?: number; late?: number }): string {
  if (progress.status === 'COMPLETE') return 'done';
  const end = steady ? steady.end : progress.estimatedEndTime;
  const late = steady ? steady.late : progress.estimatedEndTimeLate;
  if (progress.status === 'ERROR' || end === undefined) return '';
  const left = Math.max(0, end - now);
  const upTo = late !== undefined && late - now > left + 1_000 ? ` (up to ${duration(late - now)})` : '';
  return `about ${duration(left)} left${upTo}`;
}

/** How long a new estimate takes to replace the one shown. */
export const EASE_MS = 5_000;

/**
 * An estimated end that counts down steadily: a new estimate is reached over EASE_MS instead of
 * at once, so the text moves by a second each second rather than jumping with every update.
 */
export class SteadyEnd {
  #from: number | undefined;
  #to: number | undefined;
  #since = 0;

  set(end: number | undefined, now = Date.now()): void {
    if (end === undefined) {
      this.#from = this.#to = undefined;
      return;
    }
    if (end === this.#to) return;
    this.#from = this.at(now) ?? end;
    this.#to = end;
    this.#since = now;
  }

  at(now = Date.now()): number | undefined {
    if (this.#from === undefined || this.#to === undefined) return undefined;
    return this.#from + (this.#to - this.#from) * Math.min(1, Math.max(0, now - this.#since) / EASE_MS);
  }
}

export function percent(progress: BookProgress): string {
  return `${Math.round(progress.overallProgress)} %`;
}

/** Parts of a status line joined by " · ", the empty ones left out (no dangling separator). */
export function joined(parts: ReadonlyArray<string | null | undefined>): string {
  return parts.filter((part): part is string => typeof part === 'string' && part !== '').join(' · ');
}

/** A book's name: its title, or its id when it has none (a book an outside worker publishes). */
export function bookName(title: string | null | undefined, bookId: string): string {
  return title !== null && title !== undefined && title.trim() !== '' ? title : bookId;
}

/** "Chapter 2 of 5 · Section 1 of 3", "5 chapters", or '' (a counter at 0 has not started). */
export function counters(progress: BookProgress): string {
  if (progress.totalChapters === 0) return '';
  const chapter = progress.currentChapter > 0 ? `Chapter ${progress.currentChapter} of ${progress.totalChapters}` : `${progress.totalChapters} chapter${progress.totalChapters === 1 ? '' : 's'}`;
  const section = progress.currentChapter > 0 && progress.totalSections > 0 && progress.currentSection > 0 ? `Section ${progress.currentSection} of ${progress.totalSections}` : '';
  return joined([chapter, section]);
}

/**
 * When the book's publisher went silent (its last update), once it is not terminal and silent
 * for `staleAfterMs`: the server's rule (src/progress/stall.ts), computed here every second,
 * so a page watching a stream marks it without being told.
 */
export function stalledAt(progress: BookProgress, staleAfterMs: number, now = Date.now()): number | undefined {
  if (progress.status === 'COMPLETE' || progress.status === 'ERROR') return undefined;
  return now - progress.timestamp >= staleAfterMs ? progress.timestamp : undefined;
}

/** "Stalled: no update for 3 min 2 s". */
export function stalledText(since: number, now = Date.now()): string {
  return `⚠ Stalled: no update for ${duration(now - since)}`;
}
