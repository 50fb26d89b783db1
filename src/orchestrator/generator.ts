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
 * Where the content comes from: the demo generator here, an AI service in production. Any
 * error it throws is a generation failure and marks the book ERROR, so an implementation
 * retries its own transient faults before throwing.
 */
export interface Generator {
  prepare(step: PreparationStep, book: BookSpec): Promise<void>;
  outline(book: BookSpec): Promise<ChapterPlan[]>;
  writeSection(book: BookSpec, chapter: ChapterPlan, section: number): Promise<string>;
}
