import type { Logger } from 'pino';
import type { TextLog } from '../broker/text-log.js';
import type { BookProgress, ProgressUpdate } from '../progress/schema.js';
import { isTerminal } from '../progress/schema.js';
import { FencedError } from '../progress/tracker.js';
import type { ProgressTracker, Writer } from '../progress/tracker.js';
import { rootMessage } from '../store/failures.js';
import type { ChapterSave, RunStore } from '../store/runs.js';
import { GenerationError } from './generator.js';
import type { BookSpec, ChapterPlan, Generator } from './generator.js';
import { ProgressPublisher } from './publisher.js';
import { retryGeneration, retryInfrastructure } from './retry.js';
import { RunText } from './live-text.js';
import { SectionText } from './section-text.js';
import type { TextSink } from './section-text.js';

export interface PipelineDeps {
  tracker: ProgressTracker;
  runs: Pick<RunStore, 'saveChapter' | 'saveOutline'>;
  generator: Generator;
  log: Logger;
  /** Retries of each generator call before the book is marked ERROR. */
  generatorRetries: number;
  onRetry?: () => void;
  /** Aborted at shutdown or when the run was superseded: it stops where it is, marking nothing. */
  signal?: AbortSignal;
  /** Called when a write of the run was refused because another run took the book over. */
  onSuperseded?: () => void;
  /** Whose book it is: a new book's first state gets the tenant. */
  writer?: Writer;
  /** Gets the text of each section as it is written (and a reset when a call is made again). */
  onText?: TextSink;
  /** Where the live text goes, fenced by the run's epoch (and told when a chapter is saved). */
  texts?: TextLog;
}

/** One claim of a book's run: what to write, and what is already written. */
export interface PipelineRun {
  spec: BookSpec;
  /** The fence every write of this run carries. */
  epoch: number;
  /** The outline an earlier claim saved; null: not planned yet. */
  outline: ChapterPlan[] | null;
  /** Chapters saved by earlier claims: never generated or written again. */
  saved: ReadonlySet<number>;
  /** An earlier claim of this run was interrupted. */
  resumed: boolean;
  /** A retry of a book that ended ERROR: it goes on from there, never PLANNING again. */
  retried: boolean;
  /** The book's state when claimed (null for a new book). */
  held: BookProgress | null;
}

/** A write of the run was refused: another run holds the book now. */
export class SupersededError extends Error {
  override readonly name = 'SupersededError';
}

export type PipelineResult = 'COMPLETE' | 'ERROR' | 'ABORTED';

/**
 * Starts one claim of a book's run: publishes its first state (PLANNING for a new book,
 * GENERATING when it continues one), so the book can be polled and watched as soon as this
 * resolves (unless Redis is down: then the state follows when it answers), and generates the
 * rest in the background. `finished` settles when the run ends.
 */
export async function startPipeline(run: PipelineRun, deps: PipelineDeps): Promise<{ finished: Promise<PipelineResult> }> {
  const { spec } = run;
  const publisher = new ProgressPublisher(deps.tracker, spec.bookId, deps.log, { signal: deps.signal, fence: run.epoch, writer: deps.writer, onFenced: deps.onSuperseded });
  const continuing = run.resumed || run.retried || run.outline !== null || run.saved.size > 0;
  const counts = { totalChapters: spec.chapters, totalSections: spec.sectionsPerChapter };
  await publisher.publish(
    continuing
      ? { status: 'GENERATING', ...counts, message: `Resuming: ${run.saved.size} of ${spec.chapters} chapters saved` }
      : { status: 'PLANNING', generationStep: 'PLANNING', ...counts, currentChapter: 0, currentSection: 0, message: 'Planning the book...' },
  );
  return { finished: generateBook(run, continuing, deps, publisher) };
}

/**
 * Generates the book step by step (outline, then chapters), skipping what earlier claims of the run saved.
 * Every finished chapter is saved at once, fenced by the run's epoch, one save after another
 * (so the saved chapters are always the first ones); a save that fails because Postgres is
 * down is retried in the background (the text stays in memory, never regenerated), and
 * COMPLETE is published only once every chapter is saved. Redis and Postgres outages delay a
 * book; they never fail it.
 */
async function generateBook(run: PipelineRun, continuing: boolean, deps: PipelineDeps, publisher: ProgressPublisher): Promise<PipelineResult> {
  const { spec, epoch } = run;
  const { generator, log, signal } = deps;
  const generate = <T>(what: string, work: () => Promise<T>): Promise<T> =>
    retryGeneration(work, { what: `${what} of ${spec.bookId}`, retries: deps.generatorRetries, log, signal, onRetry: deps.onRetry });

  const live = deps.texts ? new RunText(deps.texts, spec.bookId, epoch, log) : null;
  const sink: TextSink | undefined =
    live || deps.onText
      ? async (event) => {
          await live?.write(event);
          await deps.onText?.(event);
        }
      : undefined;
  let saving: Promise<void> = Promise.resolve();
  const persist = (what: string, write: () => Promise<ChapterSave | boolean>, saved?: () => Promise<void>) => {
    saving = saving.then(async () => {
      const outcome = await retryInfrastructure(write, { what: `saving ${what} of a book`, log, signal });
      if (outcome === 'superseded' || outcome === false) {
        deps.onSuperseded?.();
        throw new SupersededError(`saving ${what} of ${spec.bookId}: run ${epoch} was superseded`);
      }
      if (outcome === 'gone') throw new Error(`saving ${what} of ${spec.bookId}: the book is gone`);
      if (outcome === 'exists') log.warn({ bookId: spec.bookId, epoch, what }, 'chapter already saved; kept as it was');
      await saved?.();
    });
    // A refusal surfaces at `await saving` below; unobserved until then it would be an unhandled rejection.
    saving.catch(() => {});
  };
  // An earlier claim may have shown a later chapter than the first unsaved one: counters never go back.
  const shown = run.held && !isTerminal(run.held.status) ? run.held.currentChapter : 0;
  const at = (chapter: number, section: number): ProgressUpdate => (chapter >= shown ? { currentChapter: chapter, currentSection: section } : {});
  const callSignal = signal ?? new AbortController().signal;
  /** One call for a section: its chunks passed on as they come; a call that fails part-way takes back what it sent. */
  const writeSection = async (chapter: ChapterPlan, section: number): Promise<string> => {
    const text = new SectionText({ bookId: spec.bookId, chapter: chapter.number, section }, sink, log);
    try {
      for await (const chunk of generator.writeSection(spec, chapter, section, callSignal)) {
        // The retry gave up on this call already: what it still yields goes nowhere.
        callSignal.throwIfAborted();
        await text.append(chunk);
      }
      return text.text;
    } catch (error) {
      if (error instanceof FencedError) deps.onSuperseded?.();
      else if (!callSignal.aborted) await text.abandon();
      throw error;
    }
  };

  try {
    if (!continuing) {
      await generate('planning', () => generator.prepare('PLANNING', spec));
      publisher.publish({ status: 'GENERATING', generationStep: 'RESEARCH', message: 'Researching the topic...' });
      await generate('research', () => generator.prepare('RESEARCH', spec));
    }
    let outline = run.outline;
    if (outline === null) {
      publisher.publish({ status: 'GENERATING', generationStep: 'OUTLINE', message: `Outlining ${spec.chapters} chapters...` });
      const planned = await generate('the outline', () => generator.outline(spec, callSignal));
      persist('the outline', () => deps.runs.saveOutline(spec.bookId, epoch, planned));
      outline = planned;
      publisher.publish({ generationStep: 'STRUCTURE', message: 'Structuring chapters and sections...' });
      await generate('structuring', () => generator.prepare('STRUCTURE', spec));
    }

    for (const chapter of outline) {
      if (run.saved.has(chapter.number)) continue;
      const sections: string[] = [];
      for (let section = 1; section <= spec.sectionsPerChapter; section++) {
        publisher.publish({ generationStep: 'CHAPTERS', ...at(chapter.number, section - 1), message: `Writing Chapter ${chapter.number} of ${spec.chapters}...` });
        sections.push(await generate(`chapter ${chapter.number}`, () => writeSection(chapter, section)));
      }
      const saved = { number: chapter.number, title: chapter.title, content: sections.join('\n\n') };
      persist(
        `chapter ${chapter.number}`,
        () => deps.runs.saveChapter(spec.bookId, epoch, saved),
        async () => live?.chapterSaved(chapter.number, spec.sectionsPerChapter),
      );
      publisher.publish({ ...at(chapter.number, spec.sectionsPerChapter), message: `Finished Chapter ${chapter.number} of ${spec.chapters}` });
    }

    publisher.publish({ generationStep: 'PROOFREADING', message: 'Proofreading the manuscript...' });
    await generate('proofreading', () => generator.prepare('PROOFREADING', spec));
    publisher.publish({ message: 'Saving chapters...' });
    await saving;
    await publisher.finish((tracker, options) => tracker.markComplete(spec.bookId, spec.chapters, options));
    return 'COMPLETE';
  } catch (error) {
    if (signal?.aborted || error instanceof SupersededError || error instanceof FencedError) {
      // Chapters finished before a shutdown are still saved (each save's first attempt runs), so the next claim skips them.
      await saving.catch(() => {});
      return 'ABORTED';
    }
    // Not an outage (those are retried above): the generator failed, or the database refused a
    // chapter outright, which no retry can mend. Either way the book shows ERROR with a reason.
    const reason = error instanceof GenerationError ? error.message : 'the database refused to save a chapter';
    log.warn({ bookId: spec.bookId, err: error instanceof GenerationError ? error.message : rootMessage(error) }, 'book generation failed');
    // Chapters already written are kept: their saves go on.
    await saving.catch(() => {});
    try {
      await publisher.finish((tracker, options) => tracker.markError(spec.bookId, reason, options));
    } catch (finishError) {
      if (signal?.aborted || finishError instanceof FencedError) return 'ABORTED';
      throw finishError;
    }
    return 'ERROR';
  }
}
