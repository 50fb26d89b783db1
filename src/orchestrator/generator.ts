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
 * error with `retryable: false` marks it ERROR at once.
 */
export interface Generator {
  prepare(step: PreparationStep, book: BookSpec): Promise<void>;
  outline(book: BookSpec): Promise<ChapterPlan[]>;
  writeSection(book: BookSpec, chapter: ChapterPlan, section: number): Promise<string>;
}

/** A failure of the generator itself (after its retries): the only thing that marks a book ERROR. */
export class GenerationError extends Error {
  override readonly name = 'GenerationError';
}
