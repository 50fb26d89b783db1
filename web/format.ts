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

export function duration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${seconds % 60} s`;
}

/** "about 2 min left", or '' when there is no estimate. */
export function eta(progress: BookProgress, now = Date.now()): string {
  if (progress.status === 'COMPLETE') return 'done';
  if (progress.status === 'ERROR' || progress.estimatedEndTime === undefined) return '';
  return `about ${duration(progress.estimatedEndTime - now)} left`;
}

export function percent(progress: BookProgress): string {
  return `${Math.round(progress.overallProgress)} %`;
}
