import type { Logger } from 'pino';
import type { BookProgress, ProgressUpdate } from '../progress/schema.js';
import { FencedError } from '../progress/tracker.js';
import type { Fence } from '../broker/commit.js';
import type { ProgressTracker, UpdateOptions, Writer } from '../progress/tracker.js';
import { rootMessage } from '../store/failures.js';
import { retryInfrastructure } from './retry.js';

/**
 * Publishes one book's progress without ever blocking generation on Redis: updates queued
 * while a publish is in flight (or while Redis is down) are merged into one, so the newest
 * state goes out as soon as Redis answers. Terminal states are retried until they land.
 * Every update carries the run's fence; once one is refused as superseded, nothing more is sent.
 */
export class ProgressPublisher {
  readonly #tracker: ProgressTracker;
  readonly #bookId: string;
  readonly #log: Logger;
  readonly #signal: AbortSignal | undefined;
  readonly #fence: Fence | undefined;
  readonly #writer: Writer | undefined;
  readonly #onFenced: () => void;
  #fenced = false;
  #pending: ProgressUpdate | null = null;
  /** Callers of publish() waiting for the first attempt that carries their update. */
  #attempting: Array<() => void> = [];
  #flushing: Promise<void> | null = null;

  constructor(
    tracker: ProgressTracker,
    bookId: string,
    log: Logger,
    options: { signal?: AbortSignal; fence?: Fence; writer?: Writer; onFenced?: () => void } = {},
  ) {
    this.#tracker = tracker;
    this.#bookId = bookId;
    this.#log = log;
    this.#signal = options.signal;
    this.#fence = options.fence;
    this.#writer = options.writer;
    this.#onFenced = options.onFenced ?? (() => {});
  }

  /** The options of every update: the run's fence, and whose book it is (for its first state). */
  get updateOptions(): UpdateOptions {
    return { ...(this.#fence === undefined ? {} : { fence: this.#fence }), ...(this.#writer === undefined ? {} : { writer: this.#writer }) };
  }

  /**
   * Queues `update`. The promise resolves once the update has been committed, or once its first
   * attempt failed and it waits for Redis in the background; it never rejects. Generation does
   * not wait for it, except for a run's first state.
   */
  publish(update: ProgressUpdate): Promise<void> {
    if (this.#fenced) return Promise.resolve();
    this.#pending = { ...this.#pending, ...update };
    const attempted = new Promise<void>((resolve) => this.#attempting.push(resolve));
    this.#flushing ??= this.#flush();
    return attempted;
  }

  /**
   * Waits for queued updates, then commits the terminal state `finish` produces (passing it the
   * update options), retrying until it lands. Throws FencedError when the run was superseded.
   */
  async finish(finish: (tracker: ProgressTracker, options: { fence?: Fence }) => Promise<BookProgress>): Promise<BookProgress> {
    await this.#flushing;
    if (this.#fenced) throw new FencedError(`book ${this.#bookId}: the run was superseded`);
    try {
      return await retryInfrastructure(() => finish(this.#tracker, this.updateOptions), {
        what: 'publishing a terminal state',
        log: this.#log,
        signal: this.#signal,
      });
    } catch (error) {
      if (error instanceof FencedError) this.#superseded();
      throw error;
    }
  }

  #superseded(): void {
    this.#fenced = true;
    this.#pending = null;
    this.#onFenced();
  }

  /** Runs while updates are queued; clears #flushing in the same step as its last check, so no update is stranded. */
  async #flush(): Promise<void> {
    try {
      while (this.#pending !== null) {
        const update = this.#pending;
        this.#pending = null;
        try {
          await retryInfrastructure(
            async () => {
              // Newer updates that arrived while Redis was down ride along with this one.
              const merged = { ...update, ...this.#pending };
              this.#pending = null;
              Object.assign(update, merged);
              const attempting = this.#attempting.splice(0);
              try {
                return await this.#tracker.updateProgress(this.#bookId, update, this.updateOptions);
              } finally {
                for (const resolve of attempting) resolve();
              }
            },
            { what: 'publishing progress', log: this.#log, signal: this.#signal },
          );
        } catch (error) {
          for (const resolve of this.#attempting.splice(0)) resolve();
          if (this.#signal?.aborted) return;
          if (error instanceof FencedError) {
            this.#log.debug({ bookId: this.#bookId, fence: this.#fence }, 'progress update refused: the run was superseded');
            this.#superseded();
            return;
          }
          // Not an outage: an update the schema refuses is a bug in the pipeline; log it and go on.
          this.#log.error({ err: rootMessage(error), bookId: this.#bookId }, 'progress update refused');
        }
      }
    } finally {
      this.#flushing = null;
    }
  }
}
