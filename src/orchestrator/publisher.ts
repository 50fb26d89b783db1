import type { Logger } from 'pino';
import type { BookProgress, ProgressUpdate } from '../progress/schema.js';
import { ANY_WRITER } from '../progress/tracker.js';
import type { ProgressTracker, Writer } from '../progress/tracker.js';
import { rootMessage } from '../store/failures.js';
import { retryInfrastructure } from './retry.js';

/**
 * Publishes one book's progress without ever blocking generation on Redis: updates queued
 * while a publish is in flight (or while Redis is down) are merged into one, so the newest
 * state goes out as soon as Redis answers. Terminal states are retried until they land.
 */
export class ProgressPublisher {
  readonly #tracker: ProgressTracker;
  readonly #bookId: string;
  readonly #log: Logger;
  readonly #signal: AbortSignal | undefined;
  readonly #writer: Writer;
  #pending: ProgressUpdate | null = null;
  /** Callers of publish() waiting for the first attempt that carries their update. */
  #attempting: Array<() => void> = [];
  #flushing: Promise<void> | null = null;

  constructor(tracker: ProgressTracker, bookId: string, log: Logger, signal?: AbortSignal, writer: Writer = ANY_WRITER) {
    this.#tracker = tracker;
    this.#bookId = bookId;
    this.#log = log;
    this.#signal = signal;
    this.#writer = writer;
  }

  /**
   * Queues `update`. The promise resolves once the update has been committed, or once its first
   * attempt failed and it waits for Redis in the background; it never rejects. Generation does
   * not wait for it, except for a run's first state.
   */
  publish(update: ProgressUpdate): Promise<void> {
    this.#pending = { ...this.#pending, ...update };
    const attempted = new Promise<void>((resolve) => this.#attempting.push(resolve));
    this.#flushing ??= this.#flush();
    return attempted;
  }

  /** Waits for queued updates, then commits the terminal state `finish` produces, retrying until it lands. */
  async finish(finish: (tracker: ProgressTracker) => Promise<BookProgress>): Promise<BookProgress> {
    await this.#flushing;
    return retryInfrastructure(() => finish(this.#tracker), { what: `terminal progress of ${this.#bookId}`, log: this.#log, signal: this.#signal });
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
                return await this.#tracker.updateProgress(this.#bookId, update, this.#writer);
              } finally {
                for (const resolve of attempting) resolve();
              }
            },
            { what: `progress of ${this.#bookId}`, log: this.#log, signal: this.#signal },
          );
        } catch (error) {
          for (const resolve of this.#attempting.splice(0)) resolve();
          if (this.#signal?.aborted) return;
          // Not an outage: an update the schema refuses is a bug in the pipeline; log it and go on.
          this.#log.error({ err: rootMessage(error), bookId: this.#bookId }, 'progress update refused');
        }
      }
    } finally {
      this.#flushing = null;
    }
  }
}
