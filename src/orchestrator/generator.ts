/** What to generate. */
export interface BookSpec {
  bookId: string;
  title: string;
  chapters: number;
  sectionsPerChapter: number;
}

export interface ChapterPlan {
  number: number;
  title: string;
}

/** Steps that produce no content of their own. */
export type PreparationStep = 'PLANNING' | 'RESEARCH' | 'STRUCTURE' | 'PROOFREADING';

/**
 * Where the content comes from: the demo generator here, an AI service in production. A call
 * that throws is retried (GENERATOR_RETRIES, with backoff) before the book is marked ERROR; an
 * error with `retryable: false` marks it ERROR at once, and one with `retryAfterMs` (the
 * service's Retry-After) is retried no sooner than that.
 */
export interface Generator {
  prepare(step: PreparationStep, book: BookSpec): Promise<void>;
  /** The chapter plan; stops (throws) soon after `signal`, when given, aborts. */
  outline(book: BookSpec, signal?: AbortSignal): Promise<ChapterPlan[]>;
  /**
   * The section's text as it is written, in chunks whose concatenation is the section. A
   * stream that throws part-way is a failed call: the pipeline drops what it yielded and calls
   * again. Stops (ends or throws) soon after `signal` aborts.
   */
  writeSection(book: BookSpec, chapter: ChapterPlan, section: number, signal: AbortSignal): AsyncIterable<string>;
}

/** How a failed generator call is retried: never (`retryable: false`), or not before `retryAfterMs`. */
export interface RetryHint {
  retryable?: boolean;
  retryAfterMs?: number;
}

/** A failure of the generator itself (after its retries): the only thing that marks a book ERROR. */
export class GenerationError extends Error {
  override readonly name = 'GenerationError';
}
