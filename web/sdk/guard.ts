/**
 * The browser client's own copy of the BookProgress shape and a small hand-kept guard for it,
 * so the client carries no zod. test/web/sdk-guard.test.ts keeps both equal to
 * src/progress/schema.ts (the type, and the verdict on valid and invalid states).
 */

export type Status = 'PLANNING' | 'GENERATING' | 'COMPLETE' | 'ERROR';
export type Step = 'PLANNING' | 'RESEARCH' | 'OUTLINE' | 'STRUCTURE' | 'CHAPTERS' | 'PROOFREADING' | 'COMPLETE';

/** The latest state of one book, as the server sends it (see docs/state.schema.json). */
export interface BookProgress {
  bookId: string;
  status: Status;
  generationStep: Step;
  currentChapter: number;
  totalChapters: number;
  currentSection: number;
  totalSections: number;
  overallProgress: number;
  message: string;
  timestamp: number;
  error?: string | undefined;
  startTime?: number | undefined;
  estimatedEndTime?: number | undefined;
  estimatedEndTimeLate?: number | undefined;
  stalledSince?: number | undefined;
  tenant?: string | undefined;
  version: number;
}

const STATUSES: readonly string[] = ['PLANNING', 'GENERATING', 'COMPLETE', 'ERROR'];
const STEPS: readonly string[] = ['PLANNING', 'RESEARCH', 'OUTLINE', 'STRUCTURE', 'CHAPTERS', 'PROOFREADING', 'COMPLETE'];
const COUNTS = ['currentChapter', 'totalChapters', 'currentSection', 'totalSections'] as const;
const TIMES = ['startTime', 'estimatedEndTime', 'estimatedEndTimeLate', 'stalledSince'] as const;
const KEYS = ['bookId', 'status', 'generationStep', ...COUNTS, 'overallProgress', 'message', 'timestamp', 'error', ...TIMES, 'tenant', 'version'] as const;

const isInt = (v: unknown, max = Number.MAX_SAFE_INTEGER): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max;
const isText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max && !v.includes('\0') && v.isWellFormed();

/**
 * The state in `raw` when it is a valid BookProgress (unknown fields dropped, as the server's
 * schema does), else null. Checks what a renderer relies on: types, enums, ranges, lengths.
 */
export function parseBookProgress(raw: unknown): BookProgress | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as Record<string, unknown>;
  if (typeof r.bookId !== 'string' || !/^[A-Za-z0-9_-]{1,128}$/.test(r.bookId)) return null;
  if (!STATUSES.includes(r.status as string) || !STEPS.includes(r.generationStep as string)) return null;
  for (const key of COUNTS) if (!isInt(r[key], 100_000)) return null;
  if ((r.currentChapter as number) > (r.totalChapters as number) || (r.currentSection as number) > (r.totalSections as number)) return null;
  if (typeof r.overallProgress !== 'number' || !(r.overallProgress >= 0 && r.overallProgress <= 100)) return null;
  if (!isText(r.message, 2_000) || !isInt(r.timestamp) || !isInt(r.version) || r.version < 1) return null;
  if (r.error !== undefined && !isText(r.error, 8_000)) return null;
  for (const key of TIMES) if (r[key] !== undefined && !isInt(r[key])) return null;
  if (r.tenant !== undefined && (typeof r.tenant !== 'string' || r.tenant.length < 1 || r.tenant.length > 256 || /[\u0000-\u001f\u007f]/.test(r.tenant) || !r.tenant.isWellFormed())) return null;
  const state: Record<string, unknown> = {};
  for (const key of KEYS) if (r[key] !== undefined) state[key] = r[key];
  return state as unknown as BookProgress;
}

export function isTerminal(status: Status): boolean {
  return status === 'COMPLETE' || status === 'ERROR';
}
