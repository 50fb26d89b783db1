import type { Logger } from 'pino';
import type { ProgressTracker, Writer } from '../progress/tracker.js';
import type { BookStore } from '../store/books.js';
import { rootMessage } from '../store/failures.js';
import type { BookSpec, Generator } from './generator.js';
import { ProgressPublisher } from './publisher.js';
import { retryInfrastructure } from './retry.js';

export interface PipelineDeps {
  tracker: ProgressTracker;
  books: Pick<BookStore, 'saveChapter'>;
  generator: Generator;
  log: Logger;
  /** Aborted at shutdown: the run stops where it is, without marking the book failed. */
  signal?: AbortSignal;
  /** Whose book it is: its first state gets the tenant. */
  writer?: Writer;
}

/** A failure of the generator itself: the only thing that marks a book ERROR. */
export class GenerationError extends Error {
  override readonly name = 'GenerationError';
}

export type PipelineResult = 'COMPLETE' | 'ERROR' | 'ABORTED';

/**
 * Starts one book's run: publishes its first state, so the book can be polled and watched as
 * soon as this resolves (unless Redis is down: then the state follows when it answers), and
 * generates the book in the background. `finished` settles when the run ends.
 */
export async function startPipeline(spec: BookSpec, deps: PipelineDeps): Promise<{ finished: Promise<PipelineResult> }> {
  const publisher = new ProgressPublisher(deps.tracker, spec.bookId, deps.log, deps.signal, deps.writer);
  await publisher.publish({
    status: 'PLANNING',
    generationStep: 'PLANNING',
    totalChapters: spec.chapters,
    totalSections: spec.sectionsPerChapter,
    currentChapter: 0,
    currentSection: 0,
    message: 'Planning the book...',
  });
  return { finished: generateBook(spec, deps, publisher) };
}

/**
 * Generates the book through the seed's steps, publishing progress as it goes. Every finished
 * chapter is saved at once; a save that fails because Postgres is down is retried in the
 * background (the text stays in memory, never regenerated), and COMPLETE is published only
 * once every chapter is saved. Redis and Postgres outages delay a book; they never fail it.
 */
async function generateBook(spec: BookSpec, deps: PipelineDeps, publisher: ProgressPublisher): Promise<PipelineResult> {
  const { generator, log, signal } = deps;
  const generate = async <T>(work: () => Promise<T>): Promise<T> => {
    signal?.throwIfAborted();
    try {
      return await work();
    } catch (error) {
      if (signal?.aborted) throw error;
      throw new GenerationError((error as Error).message || 'generation failed', { cause: error });
    }
  };
  const saves: Array<Promise<void>> = [];

  try {
    await generate(() => generator.prepare('PLANNING', spec));
    publisher.publish({ status: 'GENERATING', generationStep: 'RESEARCH', message: 'Researching the topic...' });
    await generate(() => generator.prepare('RESEARCH', spec));
    publisher.publish({ generationStep: 'OUTLINE', message: `Outlining ${spec.chapters} chapters...` });
    const outline = await generate(() => generator.outline(spec));
    publisher.publish({ generationStep: 'STRUCTURE', message: 'Structuring chapters and sections...' });
    await generate(() => generator.prepare('STRUCTURE', spec));

    for (const chapter of outline) {
      const sections: string[] = [];
      for (let section = 1; section <= spec.sectionsPerChapter; section++) {
        publisher.publish({
          generationStep: 'CHAPTERS',
          currentChapter: chapter.number,
          currentSection: section - 1,
          message: `Writing Chapter ${chapter.number} of ${spec.chapters}...`,
        });
        sections.push(await generate(() => generator.writeSection(spec, chapter, section)));
      }
      const saved = { number: chapter.number, title: chapter.title, content: sections.join('\n\n') };
      const save = retryInfrastructure(() => deps.books.saveChapter(spec.bookId, saved), { what: `saving chapter ${chapter.number} of ${spec.bookId}`, log, signal });
      // A refusal (not an outage) surfaces at Promise.all(saves) below; unobserved until then it would be an unhandled rejection.
      save.catch(() => {});
      saves.push(save);
      publisher.publish({ currentChapter: chapter.number, currentSection: spec.sectionsPerChapter, message: `Finished Chapter ${chapter.number} of ${spec.chapters}` });
    }

    publisher.publish({ generationStep: 'PROOFREADING', message: 'Proofreading the manuscript...' });
    await generate(() => generator.prepare('PROOFREADING', spec));
    publisher.publish({ message: 'Saving chapters...' });
    await Promise.all(saves);
    await publisher.finish((tracker) => tracker.markComplete(spec.bookId, spec.chapters));
    return 'COMPLETE';
  } catch (error) {
    if (signal?.aborted) return 'ABORTED';
    // Not an outage (those are retried above): the generator failed, or the database refused a
    // chapter outright, which no retry can mend. Either way the book shows ERROR with a reason.
    const reason = error instanceof GenerationError ? error.message : 'the database refused to save a chapter';
    log.warn({ bookId: spec.bookId, err: error instanceof GenerationError ? error.message : rootMessage(error) }, 'book generation failed');
    // Chapters already written are kept: their saves go on.
    await Promise.allSettled(saves);
    await publisher.finish((tracker) => tracker.markError(spec.bookId, reason));
    return 'ERROR';
  }
}
