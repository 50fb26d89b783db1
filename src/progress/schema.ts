import { z } from 'zod';

/** Book statuses; COMPLETE and ERROR end a run. */
export const STATUSES = ['PLANNING', 'GENERATING', 'COMPLETE', 'ERROR'] as const;
/** Generation steps, in pipeline order. */
export const STEPS = ['PLANNING', 'RESEARCH', 'OUTLINE', 'STRUCTURE', 'CHAPTERS', 'PROOFREADING', 'COMPLETE'] as const;

export const MAX_MESSAGE_LENGTH = 2_000;
export const MAX_ERROR_LENGTH = 8_000;
export const MAX_COUNT = 100_000;
export const MAX_TENANT_LENGTH = 256;
/** The most chapters of a book, and sections of a chapter, the server generates or takes live text for. */
export const MAX_CHAPTERS = 50;
export const MAX_SECTIONS_PER_CHAPTER = 20;

export const BookIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,128}$/, 'bookId must be 1-128 characters of A-Z, a-z, 0-9, "_" or "-"');

/** A tenant (the `tenant` claim, or `sub`): text without control characters. */
export function isTenantText(s: string): boolean {
  return !/[\u0000-\u001f\u007f]/.test(s) && s.isWellFormed();
}

export const TenantSchema = z.string().min(1).max(MAX_TENANT_LENGTH).refine(isTenantText, 'must hold no control characters or unpaired surrogates');

const count = z.number().int().min(0).max(MAX_COUNT);
/** Text Postgres can store in jsonb: no NUL, no lone UTF-16 surrogate. */
export function isStorableText(s: string): boolean {
  return !s.includes('\0') && s.isWellFormed();
}

const text = (max: number) => z.string().max(max).refine(isStorableText, 'must not contain NUL or unpaired surrogates');
const epochMs = z.number().int().min(0);

/** The fields a publisher sets; the rest are assigned by the tracker. */
const editable = {
  status: z.enum(STATUSES),
  generationStep: z.enum(STEPS),
  currentChapter: count,
  totalChapters: count,
  currentSection: count,
  totalSections: count,
  overallProgress: z.number().min(0).max(100),
  message: text(MAX_MESSAGE_LENGTH),
  error: text(MAX_ERROR_LENGTH),
  startTime: epochMs,
  estimatedEndTime: epochMs,
};

/**
 * The latest state of one book, as stored in Redis and Postgres and sent to clients. Parsing
 * only drops unknown fields (no defaults, no transforms): the Redis broker forwards a message's
 * own JSON when no field was dropped.
 */
export const BookProgressSchema = z
  .object({
    bookId: BookIdSchema,
    ...editable,
    timestamp: epochMs,
    error: editable.error.optional(),
    startTime: editable.startTime.optional(),
    estimatedEndTime: editable.estimatedEndTime.optional(),
    /** The late bound of the ETA (its p90: the run ends before it 9 times in 10); absent while no history backs one. */
    estimatedEndTimeLate: epochMs.optional(),
    /**
     * Set at read, never stored: the book is not terminal and nothing was published for
     * STALE_AFTER_SECONDS; the time of its last update (= `timestamp`). See stall.ts.
     */
    stalledSince: epochMs.optional(),
    /**
     * Who the book belongs to, fixed by its first state and kept by every later one; absent for
     * books published without authentication. Before `version`: a state ends with its version.
     */
    tenant: TenantSchema.optional(),
    /** Per-book counter, +1 on every update; the SSE event id. */
    version: z.number().int().min(1),
  })
  .refine(chapterInRange, { message: 'currentChapter must not exceed totalChapters', path: ['currentChapter'] })
  .refine(sectionInRange, { message: 'currentSection must not exceed totalSections', path: ['currentSection'] })
  .meta({ id: 'BookProgress' });

export type BookProgress = z.infer<typeof BookProgressSchema>;

/** The rules of BookProgressSchema that JSON Schema cannot express (see state-validator.ts). */
export function chapterInRange(s: { currentChapter: number; totalChapters: number }): boolean {
  return s.currentChapter <= s.totalChapters;
}

export function sectionInRange(s: { currentSection: number; totalSections: number }): boolean {
  return s.currentSection <= s.totalSections;
}

export type Status = (typeof STATUSES)[number];
export type Step = (typeof STEPS)[number];

/**
 * A partial update as a publisher sends it. Unknown fields are refused, so a typo
 * (`overalProgress`) is an error instead of a silently ignored value.
 * bookId, version and timestamp are assigned by the tracker.
 */
export const ProgressUpdateSchema = z.object(editable).partial().strict().meta({ id: 'ProgressUpdate' });

export type ProgressUpdate = z.infer<typeof ProgressUpdateSchema>;

export function isTerminal(status: Status): boolean {
  return status === 'COMPLETE' || status === 'ERROR';
}
