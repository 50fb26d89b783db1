import { and, asc, count, eq, inArray, lt, notInArray, or, sql } from 'drizzle-orm';
import type { PgUpdateSetSource } from 'drizzle-orm/pg-core';
import type { Logger } from 'pino';
import { remainingMs } from '../request-deadline.js';
import { DatabaseTimeoutError } from './deadline.js';
import type { DatabaseDeadline } from './deadline.js';
import type { Database, DatabaseHandle } from './database.js';
import { books, chapters, runs } from './schema.js';

/** A book is created only with this much of its deadline left for the COMMIT, which the deadline cannot take back. */
const COMMIT_MARGIN_MS = 50;

/** A book's generation as the queue holds it. `epoch` is the fence every write of this run carries. */
export interface Run {
  bookId: string;
  title: string;
  chapters: number;
  sectionsPerChapter: number;
  epoch: number;
  /** Claims since it was queued by a start or a retry; above 1: this claim resumes it. */
  claims: number;
  cancelRequested: boolean;
  baseVersion: number;
  outline: Array<{ number: number; title: string }> | null;
  /** The book's tenant (books.tenant, fixed at create; null: none): every state the run writes is the tenant's. */
  tenant: string | null;
}

/** What the books list shows of a run; `stalled`: its runner's lease ran out, another instance will resume it. */
export type RunState = 'queued' | 'running' | 'stalled' | 'done';

/** Where a fenced chapter save landed. */
export type ChapterSave = 'saved' | 'exists' | 'superseded' | 'gone';

/** A run not done, as the operator view lists it (times in ms since the epoch). */
export interface ActiveRun {
  bookId: string;
  title: string;
  tenant: string | null;
  state: Exclude<RunState, 'done'>;
  owner: string | null;
  leaseUntil: number | null;
  epoch: number;
  claims: number;
  retry: boolean;
  cancelRequested: boolean;
  queuedAt: number;
}

export interface Claimant {
  owner: string;
  leaseMs: number;
}

const RUN_COLUMNS = {
  bookId: runs.bookId,
  title: runs.title,
  chapters: runs.chapters,
  sectionsPerChapter: runs.sectionsPerChapter,
  epoch: runs.epoch,
  claims: runs.claims,
  cancelRequested: runs.cancelRequested,
  baseVersion: runs.baseVersion,
  outline: runs.outline,
  // Read from the book, the one place the tenant is kept: a run row has no copy to drift from it.
  tenant: sql<string | null>`(select b.tenant from books b where b.id = ${runs.bookId})`,
};

const leaseEnd = (leaseMs: number) => sql`now() + ${leaseMs}::int * interval '1 millisecond'`;

/** A claim of a run by `claimant`: a new epoch, which fences every earlier runner out. */
const claimedBy = (claimant: Claimant) =>
  ({
    state: 'running',
    epoch: sql`${runs.epoch} + 1`,
    claims: sql`${runs.claims} + 1`,
    owner: claimant.owner,
    leaseUntil: leaseEnd(claimant.leaseMs),
    updatedAt: sql`now()`,
  }) satisfies PgUpdateSetSource<typeof runs>;

/**
 * The generation queue and its leases, in the database every instance shares (Postgres, or
 * PGlite for the embedded single process). Every claim adds 1 to a run's epoch; each write
 * of a run states its epoch and lands only while it is still the current one.
 */
export class RunStore {
  readonly #db: Database;
  readonly #deadline: DatabaseDeadline;

  /** `deadline`: the bound of every statement (BACKEND_TIMEOUT_MS), as for the other stores. */
  constructor(db: Database, deadline: DatabaseDeadline) {
    this.#db = db;
    this.#deadline = deadline;
  }

  /**
   * The queue of `database`. The embedded one has a single process, so at its start a run still
   * marked running was interrupted by the last stop: its lease ends now and it resumes at once.
   */
  static async open(database: DatabaseHandle, log: Logger): Promise<RunStore> {
    const store = new RunStore(database.db, database.deadline);
    if (database.kind === 'pglite') {
      const interrupted = await store.#expireLeases();
      if (interrupted > 0) log.info({ books: interrupted }, 'resuming books interrupted by the last stop');
    }
    return store;
  }

  /**
   * Creates the book and its run in one transaction, so no book is left without its run. The
   * run is queued, or already claimed by `claimant` (epoch 1) when it has a free slot.
   */
  async create(
    book: { id: string; title: string; owner?: string | null; tenant?: string | null },
    spec: { chapters: number; sectionsPerChapter: number },
    claimant: Claimant | null,
  ): Promise<Run> {
    // The deadline must not answer 503 for a book that then commits: the transaction checks the
    // time left before its end and rolls back when too little is, so that only a COMMIT slower than
    // COMMIT_MARGIN_MS can still land late; the server ends it too if this client goes silent inside it.
    // Inside a request, its one deadline (request-deadline.ts) may end sooner than this call's own.
    const startedAt = performance.now();
    const leftMs = () => Math.min(this.#deadline.timeoutMs - (performance.now() - startedAt), remainingMs() ?? Infinity);
    return this.#deadline.run('creating a book', this.#db.transaction(async (tx) => {
      await tx.execute(sql.raw(`set local idle_in_transaction_session_timeout = ${Math.round(this.#deadline.timeoutMs)}`));
      await tx.insert(books).values({ id: book.id, title: book.title, owner: book.owner ?? null, tenant: book.tenant ?? null });
      const claimed = claimant ? { state: 'running', epoch: 1, claims: 1, owner: claimant.owner, leaseUntil: leaseEnd(claimant.leaseMs) } : {};
      const [row] = await tx
        .insert(runs)
        .values({ bookId: book.id, title: book.title, chapters: spec.chapters, sectionsPerChapter: spec.sectionsPerChapter, ...claimed })
        .returning(RUN_COLUMNS);
      if (leftMs() < COMMIT_MARGIN_MS) throw new DatabaseTimeoutError(`the database did not answer creating a book within ${this.#deadline.timeoutMs} ms`);
      return row as Run;
    }));
  }

  /**
   * Takes the oldest queued run, or a running one whose lease ran out, for `claimant`; null
   * when there is none. `running`: the books the claimant runs itself, never taken from it (its
   * lease may have run out in a database outage; its next renewal extends it). SKIP LOCKED:
   * concurrent claimers never wait for each other nor take one run twice.
   */
  async claimNext(claimant: Claimant, running: readonly string[]): Promise<Run | null> {
    const next = this.#db
      .select({ bookId: runs.bookId })
      .from(runs)
      .where(and(or(eq(runs.state, 'queued'), and(eq(runs.state, 'running'), lt(runs.leaseUntil, sql`now()`))), notInArray(runs.bookId, [...running])))
      .orderBy(asc(runs.queuedAt), asc(runs.bookId))
      .limit(1)
      .for('update', { skipLocked: true });
    const [row] = await this.#queue(this.#db
      .update(runs)
      .set(claimedBy(claimant))
      .where(inArray(runs.bookId, next))
      .returning(RUN_COLUMNS));
    return (row as Run | undefined) ?? null;
  }

  /** Extends the leases `claimant` holds on `running`; returns the epoch of each run it still holds. */
  async renew(claimant: Claimant, running: readonly string[]): Promise<Map<string, number>> {
    if (running.length === 0) return new Map();
    const rows = await this.#queue(this.#db
      .update(runs)
      .set({ leaseUntil: leaseEnd(claimant.leaseMs) })
      .where(and(eq(runs.owner, claimant.owner), eq(runs.state, 'running'), inArray(runs.bookId, [...running])))
      .returning({ bookId: runs.bookId, epoch: runs.epoch }));
    return new Map(rows.map((row) => [row.bookId, row.epoch]));
  }

  /** Hands a run back to the queue at once (shutdown): it keeps its place, the next claim resumes it. */
  release(bookId: string, epoch: number): Promise<boolean> {
    return this.#updateCurrent(bookId, epoch, { state: 'queued', owner: null, leaseUntil: null });
  }

  /** Ends the run (its book is COMPLETE or ERROR); false when the epoch was superseded. */
  finish(bookId: string, epoch: number): Promise<boolean> {
    return this.#updateCurrent(bookId, epoch, { state: 'done', owner: null, leaseUntil: null });
  }

  /** Keeps the outline, so a resumed run writes the chapters it planned; false when superseded. */
  saveOutline(bookId: string, epoch: number, outline: Array<{ number: number; title: string }>): Promise<boolean> {
    return this.#updateCurrent(bookId, epoch, { outline });
  }

  /**
   * Inserts a chapter if `epoch` is still the run's, in one statement. FOR SHARE holds the run
   * row until the insert commits, so a claim either waits for this chapter (and sees it) or
   * lands first (and this insert finds no row). A saved chapter is never rewritten.
   */
  async saveChapter(bookId: string, epoch: number, chapter: { number: number; title: string; content: string }): Promise<ChapterSave> {
    const inserted = await this.#queue(this.#db
      .insert(chapters)
      .select(
        sql`select ${bookId}::text, ${chapter.number}::int, ${chapter.title}::text, ${chapter.content}::text, now(), now()
            from runs where book_id = ${bookId} and epoch = ${epoch}::int and state = 'running' for share`,
      )
      .onConflictDoNothing()
      .returning({ number: chapters.number }));
    if (inserted.length === 1) return 'saved';
    const [run] = await this.#queue(this.#db.select({ epoch: runs.epoch, state: runs.state }).from(runs).where(eq(runs.bookId, bookId)));
    if (!run) return 'gone';
    return run.epoch === epoch && run.state === 'running' ? 'exists' : 'superseded';
  }

  /** Numbers of the chapters saved so far. */
  async savedChapters(bookId: string): Promise<Set<number>> {
    const rows = await this.#queue(this.#db.select({ number: chapters.number }).from(chapters).where(eq(chapters.bookId, bookId)));
    return new Set(rows.map((row) => row.number));
  }

  /**
   * Takes a queued or running run over for `claimant` to end it cancelled (a new epoch fences
   * its runner out, wherever it is). Null when the run is not queued or running.
   */
  async claimForCancel(bookId: string, claimant: Claimant): Promise<Run | null> {
    const [row] = await this.#queue(this.#db
      .update(runs)
      .set({ ...claimedBy(claimant), cancelRequested: true })
      .where(and(eq(runs.bookId, bookId), inArray(runs.state, ['queued', 'running'])))
      .returning(RUN_COLUMNS));
    return (row as Run | undefined) ?? null;
  }

  /** Queues a finished run again (retry), keeping its outline; null when it is not done. */
  async requeue(bookId: string, baseVersion: number): Promise<Run | null> {
    const [row] = await this.#queue(this.#db
      .update(runs)
      .set({ state: 'queued', cancelRequested: false, claims: 0, baseVersion, owner: null, leaseUntil: null, queuedAt: sql`now()`, updatedAt: sql`now()` })
      .where(and(eq(runs.bookId, bookId), eq(runs.state, 'done')))
      .returning(RUN_COLUMNS));
    return (row as Run | undefined) ?? null;
  }

  /** The run of `bookId` with its state; null for a book this service does not generate. */
  async find(bookId: string): Promise<(Run & { state: RunState }) | null> {
    const [row] = await this.#queue(this.#db
      .select({ ...RUN_COLUMNS, state: stateColumn })
      .from(runs)
      .where(eq(runs.bookId, bookId)));
    return (row as (Run & { state: RunState }) | undefined) ?? null;
  }

  async bookExists(bookId: string): Promise<boolean> {
    const rows = await this.#queue(this.#db.select({ id: books.id }).from(books).where(eq(books.id, bookId)));
    return rows.length > 0;
  }

  /** The run state of each of `bookIds` that has a run. */
  async states(bookIds: readonly string[]): Promise<Map<string, RunState>> {
    if (bookIds.length === 0) return new Map();
    const rows = await this.#queue(this.#db
      .select({ bookId: runs.bookId, state: stateColumn })
      .from(runs)
      .where(inArray(runs.bookId, [...bookIds])));
    return new Map(rows.map((row) => [row.bookId, row.state as RunState]));
  }

  /**
   * The runs not done, cluster-wide, oldest first (at most `limit`), for the operator view:
   * `retry` when a retry queued it (its base version is a state it goes on from).
   */
  async active(limit: number): Promise<ActiveRun[]> {
    const rows = await this.#queue(this.#db
      .select({
        bookId: runs.bookId,
        title: runs.title,
        tenant: RUN_COLUMNS.tenant,
        state: stateColumn,
        owner: runs.owner,
        leaseUntil: runs.leaseUntil,
        epoch: runs.epoch,
        claims: runs.claims,
        baseVersion: runs.baseVersion,
        cancelRequested: runs.cancelRequested,
        queuedAt: runs.queuedAt,
      })
      .from(runs)
      .where(inArray(runs.state, ['queued', 'running']))
      .orderBy(asc(runs.queuedAt), asc(runs.bookId))
      .limit(limit));
    return rows.map(({ baseVersion, leaseUntil, queuedAt, ...row }) => ({
      ...row,
      state: row.state as Exclude<RunState, 'done'>,
      retry: baseVersion > 0,
      leaseUntil: leaseUntil?.getTime() ?? null,
      queuedAt: queuedAt.getTime(),
    }));
  }

  /** Runs waiting for a slot, cluster-wide. */
  async countQueued(): Promise<number> {
    const [row] = await this.#queue(this.#db.select({ n: count() }).from(runs).where(eq(runs.state, 'queued')));
    return row?.n ?? 0;
  }

  /** Runs still marked running whose lease ends now: they resume at the next claim. */
  async #expireLeases(): Promise<number> {
    const rows = await this.#queue(this.#db
      .update(runs)
      .set({ leaseUntil: sql`now() - interval '1 millisecond'` })
      .where(eq(runs.state, 'running'))
      .returning({ bookId: runs.bookId }));
    return rows.length;
  }

  /** Applies `set` to the run while `epoch` is its current one; false when that epoch was superseded. */
  async #updateCurrent(bookId: string, epoch: number, set: PgUpdateSetSource<typeof runs>): Promise<boolean> {
    const rows = await this.#queue(this.#db
      .update(runs)
      .set({ ...set, updatedAt: sql`now()` })
      .where(and(eq(runs.bookId, bookId), eq(runs.epoch, epoch), eq(runs.state, 'running')))
      .returning({ bookId: runs.bookId }));
    return rows.length === 1;
  }

  /** `query` within the deadline: every queue statement but the create is named alike in a timeout. */
  #queue<T>(query: PromiseLike<T>): Promise<T> {
    return this.#deadline.run('the generation queue', query);
  }
}

const stateColumn = sql<RunState>`case when ${runs.state} = 'running' and ${runs.leaseUntil} < now() then 'stalled' else ${runs.state} end`;
