import type postgres from 'postgres';
import { expect } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';

/** What POST /api/books answers. */
export interface CreatedBook {
  bookId: string;
  title: string;
  chapters: number;
  sectionsPerChapter: number;
}

/** Starts a demo book through the server at `url`. */
export async function createBook(url: string, title: string, chapters: number, sectionsPerChapter = 2): Promise<CreatedBook> {
  const res = await fetch(`${url}/api/books`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ title, chapters, sectionsPerChapter }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { data: CreatedBook }).data;
}

/** The book's latest state, or null while the server cannot answer (404, 503, not listening). */
export async function pollState(url: string, bookId: string): Promise<BookProgress | null> {
  try {
    const res = await fetch(`${url}/api/ai/progress/${bookId}`);
    if (!res.ok) return null;
    return ((await res.json()) as { data: BookProgress }).data;
  } catch {
    return null;
  }
}

export interface ChapterRow {
  number: number;
  title: string;
  content: string;
  created_at: Date;
  updated_at: Date;
}

export function chapterRows(sql: postgres.Sql, bookId: string): Promise<ChapterRow[]> {
  return sql<ChapterRow[]>`select number, title, content, created_at, updated_at from chapters where book_id = ${bookId} order by number`;
}

/**
 * What a watcher of one run must never see across interruptions: a version, overall progress
 * or the current chapter going back, a status back to PLANNING after the book left it, or a
 * terminal state twice.
 */
export function expectMonotonic(states: readonly BookProgress[]): void {
  for (let i = 1; i < states.length; i++) {
    const [before, after] = [states[i - 1]!, states[i]!];
    expect(after.version, `version after ${before.version}`).toBeGreaterThan(before.version);
    expect(after.overallProgress, `progress at version ${after.version}`).toBeGreaterThanOrEqual(before.overallProgress);
    if (before.status !== 'PLANNING') expect(after.status, `status at version ${after.version}`).not.toBe('PLANNING');
    expect(after.currentChapter, `chapter at version ${after.version}`).toBeGreaterThanOrEqual(before.currentChapter);
  }
  expect(states.filter((s) => s.status === 'COMPLETE' || s.status === 'ERROR').length).toBeLessThanOrEqual(1);
}
