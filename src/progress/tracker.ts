import type { Fence, VersionedStates } from '../broker/commit.js';
import { nextState, startsRun } from './derive.js';
import type { EndEstimator } from './derive.js';
import { conflict, foreignBook, invalidProgress } from './errors.js';
import { BookIdSchema, BookProgressSchema, MAX_ERROR_LENGTH, MAX_MESSAGE_LENGTH, ProgressUpdateSchema, isTerminal } from './schema.js';
import type { BookProgress, ProgressUpdate } from './schema.js';

/** Options of one update: the fence of the run that writes it, if any. */
export interface UpdateOptions {
  fence?: Fence;
  /** Who writes (default ANY_WRITER: every book; a new book gets no tenant). */
  writer?: Writer;
}

export interface TrackerOptions {
  states: VersionedStates;
  /** The last persisted state, asked when `states` holds nothing (expired, or Redis restarted empty). */
  recover?: (bookId: string) => Promise<BookProgress | null>;
  /**
   * Called with each committed state that must not wait for the next snapshot: the first of a
   * run (so the database knows the book) and terminal ones. Resolves when it is durable (or
   * queued for retry while the database is down).
   */
  persistNow?: (state: BookProgress) => Promise<void>;
  /** Called with every state this tracker committed, in commit order (the run timelines: no gap when a broker subscription misses it). */
  onCommit?: (state: BookProgress) => void;
  /**
   * A learned end for a running state, given when its current step began (if this process saw
   * it); null: the linear estimate. Called on every publish: it must not do I/O (eta-refresher.ts).
   */
  estimate?: (state: BookProgress, stepStartedAt: number | undefined, now: number) => ReturnType<EndEstimator>;
  now?: () => number;
}

/**
 * Who writes: new books get `tenant` (null: none, as without authentication); a writer without
 * `anyTenant` may only change books of its own tenant.
 */
export interface Writer {
  readonly tenant: string | null;
  readonly anyTenant: boolean;
}

/** Writes everything, and new books get no tenant: the server without authentication. */
export const ANY_WRITER: Writer = Object.freeze({ tenant: null, anyTenant: true });

/** The update's fence was superseded: another writer took the book over. Not retryable. */
export class FencedError extends Error {
  override readonly name = 'FencedError';
}

const MAX_ATTEMPTS = 50;
/** Running books whose last state this process remembers (a few MB at most). */
const MAX_REMEMBERED_BOOKS = 10_000;

/**
 * The progress API publishers call (updateProgress, markComplete, markError). Updates are merged into the latest state with optimistic
 * concurrency: read, derive, commit-if-unchanged, retry on conflict, so concurrent
 * publishers never share a version and never lose an update.
 */
export class ProgressTracker {
  readonly #states: VersionedStates;
  readonly #recover: (bookId: string) => Promise<BookProgress | null>;
  readonly #persistNow: (state: BookProgress) => Promise<void>;
  readonly #onCommit: (state: BookProgress) => void;
  readonly #estimate: TrackerOptions['estimate'];
  /** When each running book's current step began, as this process saw it. */
  readonly #stepStarts = new Map<string, { startTime: number | undefined; step: string; at: number }>();
  readonly #now: () => number;
  /**
   * The last state this process committed per running book, so a restarted-empty Redis neither
   * restarts a count clients have seen nor moves the book back to an older database snapshot.
   */
  readonly #committed = new Map<string, BookProgress>();
  /** Updates of one book run one after another in this process; the race is only between processes. */
  readonly #queues = new Map<string, Promise<unknown>>();

  constructor(options: TrackerOptions) {
    this.#states = options.states;
    this.#recover = options.recover ?? (async () => null);
    this.#persistNow = options.persistNow ?? (async () => {});
    this.#onCommit = options.onCommit ?? (() => {});
    this.#estimate = options.estimate;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Merges a partial update into the book's latest state, publishes it and returns it. Throws
   * a 404 Refusal (as for a missing book), changing nothing, when the book belongs to a tenant
   * `options.writer` may not write, and FencedError when `options.fence` was superseded.
   */
  async updateProgress(bookId: string, update: ProgressUpdate, options: UpdateOptions = {}): Promise<BookProgress> {
    const id = BookIdSchema.safeParse(bookId);
    if (!id.success) throw invalidProgress(id.error, 'bookId');
    const parsed = ProgressUpdateSchema.safeParse(update);
    if (!parsed.success) throw invalidProgress(parsed.error, 'update');
    return this.#serialized(bookId, () => this.#apply(bookId, parsed.data, options.writer ?? ANY_WRITER, options.fence));
  }

  async #serialized<T>(bookId: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#queues.get(bookId) ?? Promise.resolve();
    const run = previous.then(task, task);
    const settled = run.then(
      () => {},
      () => {},
    );
    this.#queues.set(bookId, settled);
    try {
      return await run;
    } finally {
      if (this.#queues.get(bookId) === settled) this.#queues.delete(bookId);
    }
  }

  async #apply(bookId: string, update: ProgressUpdate, writer: Writer, fence: Fence | undefined): Promise<BookProgress> {
    const held = await this.#states.get(bookId);
    let expected = held?.version ?? null;
    let current = held;
    const committed = this.#committed.get(bookId) ?? null;
    let minVersion = committed?.version ?? 0;
    if (held === null) {
      current = newer(await this.#recover(bookId), committed);
      minVersion = Math.max(minVersion, current?.version ?? 0);
    }

    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      // Checked on every attempt: the state a lost race reveals may be another tenant's first one.
      if (current !== null && !writer.anyTenant && current.tenant !== (writer.tenant ?? undefined)) {
        throw foreignBook(bookId);
      }
      const now = this.#now();
      const next = nextState(bookId, current, update, now, minVersion, writer.tenant ?? undefined, this.#estimator(current, now));
      const result = await this.#states.commit(next, expected, fence);
      if ('fenced' in result) throw new FencedError(`book ${bookId}: the update's fence ${fence} was superseded`);
      if (result.committed) {
        this.#remember(next);
        this.#rememberStep(current, next);
        this.#onCommit(next);
        if (isTerminal(next.status) || startsRun(current, next)) await this.#persistNow(next);
        return next;
      }
      expected = result.current?.version ?? null;
      // A key that vanished meanwhile (TTL) keeps the base we had, so the run goes on.
      if (result.current !== null) current = result.current;
    }
    throw conflict(`book ${bookId}: ${MAX_ATTEMPTS} concurrent updates won the race; try again`);
  }

  /**
   * Gives a book without a tenant (made while authentication was off) to `tenant`: a new version
   * of its state, otherwise unchanged, that names it, so every watcher, cache and the database
   * see it. `assigned`: committed; `unchanged`: it already was the tenant's; `taken`: another
   * tenant's, left alone; `none`: the book has no state. The database row is BookAdoption's.
   */
  async assignTenant(bookId: string, tenant: string): Promise<{ outcome: 'assigned' | 'unchanged' | 'taken' | 'none'; state: BookProgress | null }> {
    return this.#serialized(bookId, async () => {
      const held = await this.#states.get(bookId);
      let expected = held?.version ?? null;
      let current = held ?? newer(await this.#recover(bookId), this.#committed.get(bookId) ?? null);
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (current === null) return { outcome: 'none' as const, state: null };
        if (current.tenant === tenant) return { outcome: 'unchanged' as const, state: current };
        if (current.tenant !== undefined) return { outcome: 'taken' as const, state: null };
        // Parsed again so the field lands where the schema puts it; derive.ts keeps it from now on.
        const { stalledSince: _computedAtRead, ...stored } = current;
        const next = BookProgressSchema.parse({ ...stored, tenant, version: current.version + 1, timestamp: this.#now() });
        const result = await this.#states.commit(next, expected);
        if ('fenced' in result) throw new FencedError(`book ${bookId}: fenced`);
        if (result.committed) {
          this.#remember(next);
          await this.#persistNow(next);
          return { outcome: 'assigned' as const, state: next };
        }
        expected = result.current?.version ?? null;
        if (result.current !== null) current = result.current;
      }
      throw conflict(`book ${bookId}: ${MAX_ATTEMPTS} concurrent updates won the race; try again`);
    });
  }

  /** Marks the book complete: every chapter written, 100 %. Resolves once the state is durable. */
  markComplete(bookId: string, totalChapters: number, options: UpdateOptions = {}): Promise<BookProgress> {
    return this.updateProgress(bookId, {
      status: 'COMPLETE',
      generationStep: 'COMPLETE',
      totalChapters,
      message: 'Book generation complete',
    }, options);
  }

  /** Marks the book failed with `message` (cut to fit); counters and generated content stay. */
  markError(bookId: string, message: string, options: UpdateOptions = {}): Promise<BookProgress> {
    return this.updateProgress(bookId, {
      status: 'ERROR',
      error: fit(message, MAX_ERROR_LENGTH),
      message: fit(`Generation failed: ${message}`, MAX_MESSAGE_LENGTH),
    }, options);
  }

  #estimator(current: BookProgress | null, now: number): EndEstimator | undefined {
    const estimate = this.#estimate;
    if (estimate === undefined) return undefined;
    return (state) => {
      let stepStartedAt: number | undefined;
      if (startsRun(current, state)) stepStartedAt = state.startTime;
      else if (current !== null && current.generationStep !== state.generationStep) stepStartedAt = now;
      else {
        const seen = this.#stepStarts.get(state.bookId);
        if (seen !== undefined && seen.startTime === state.startTime && seen.step === state.generationStep) stepStartedAt = seen.at;
      }
      return estimate(state, stepStartedAt, now);
    };
  }

  #rememberStep(previous: BookProgress | null, next: BookProgress): void {
    if (this.#estimate === undefined) return;
    const seen = this.#stepStarts.get(next.bookId);
    this.#stepStarts.delete(next.bookId);
    if (isTerminal(next.status)) return;
    const same = seen !== undefined && seen.startTime === next.startTime && seen.step === next.generationStep;
    let at: number;
    if (same) at = seen.at;
    else if (startsRun(previous, next)) at = next.startTime ?? next.timestamp;
    else if (previous !== null && previous.generationStep !== next.generationStep) at = next.timestamp;
    else return; // The step began before this process saw the book: unknown.
    this.#stepStarts.set(next.bookId, { startTime: next.startTime, step: next.generationStep, at });
    if (this.#stepStarts.size > MAX_REMEMBERED_BOOKS) this.#stepStarts.delete(this.#stepStarts.keys().next().value as string);
  }

  #remember(state: BookProgress): void {
    this.#committed.delete(state.bookId); // re-inserted last: the Map stays in least-recent order
    if (isTerminal(state.status)) return;
    this.#committed.set(state.bookId, state);
    // Books abandoned without a terminal state must not pile up: forget the least recent.
    if (this.#committed.size > MAX_REMEMBERED_BOOKS) this.#committed.delete(this.#committed.keys().next().value as string);
  }
}

function newer(a: BookProgress | null, b: BookProgress | null): BookProgress | null {
  if (a === null || b === null) return a ?? b;
  return b.version > a.version ? b : a;
}

/** `text` cut to `max` characters, still well-formed and without NUL, so it always validates. */
function fit(text: string, max: number): string {
  return text.replaceAll('\0', '').slice(0, max).toWellFormed();
}
