import { eq, sql } from 'drizzle-orm';
import type { BookProgress } from '../progress/schema.js';
import { BookProgressSchema } from '../progress/schema.js';
import type { Database } from './database.js';
import type { DatabaseDeadline } from './deadline.js';
import { books } from './schema.js';

/** Rows per upsert statement (one JSON parameter each, so no bind-parameter limit applies). */
export const UPSERT_CHUNK_ROWS = 1_000;

/** The latest progress of each book in the database: snapshots in, fallback reads out when the broker has none. */
export interface ProgressStore {
  /** The last persisted state of a book, or null when the database has none. */
  getProgress(bookId: string): Promise<BookProgress | null>;
  /**
   * Upserts states in batched statements; a row is only replaced by a newer version, so a late
   * or replayed snapshot never overwrites a newer one. Resolves to the rows actually written.
   */
  saveProgress(states: readonly BookProgress[]): Promise<number>;
  /** False since a call failed because the database could not be reached, until one succeeds. */
  readonly answering: boolean;
}

/** Queries this process sent, for metrics and the benchmark. */
export interface ProgressStoreStats {
  queries: number;
  upsertStatements: number;
  rowsWritten: number;
}

export class PgProgressStore implements ProgressStore {
  readonly stats: ProgressStoreStats = { queries: 0, upsertStatements: 0, rowsWritten: 0 };
  readonly #db: Database;
  readonly #deadline: DatabaseDeadline;

  /** `deadline` bounds each statement (DatabaseHandle.deadline). */
  constructor(db: Database, deadline: DatabaseDeadline) {
    this.#db = db;
    this.#deadline = deadline;
  }

  get answering(): boolean {
    return this.#deadline.answering;
  }

  async getProgress(bookId: string): Promise<BookProgress | null> {
    this.stats.queries++;
    const rows = await this.#deadline.run('a progress read', this.#db.select({ progress: books.progress }).from(books).where(eq(books.id, bookId)));
    const parsed = BookProgressSchema.safeParse(rows[0]?.progress);
    return parsed.success ? parsed.data : null;
  }

  async saveProgress(states: readonly BookProgress[]): Promise<number> {
    const latest = newestPerBook(states);
    let written = 0;
    for (let i = 0; i < latest.length; i += UPSERT_CHUNK_ROWS) {
      // One JSON parameter per statement, unpacked by Postgres: no per-row parameters to build
      // here, whatever the number of books (the event loop stays free for streams meanwhile).
      const chunk = await serialize(latest.slice(i, i + UPSERT_CHUNK_ROWS));
      this.stats.queries++;
      this.stats.upsertStatements++;
      const upsert = this.#db
        .insert(books)
        .select(
          sql`select s->>'bookId', '', null, s->>'tenant', s->>'status', s->>'generationStep', s, (s->>'version')::int, now(), now()
              from jsonb_array_elements(${chunk}::jsonb) as s`,
        )
        .onConflictDoUpdate({
          target: books.id,
          set: {
            // A book's tenant never changes: the first one written stays.
            tenant: sql`coalesce(${books.tenant}, excluded.tenant)`,
            status: sql`excluded.status`,
            generationStep: sql`excluded.generation_step`,
            progress: sql`excluded.progress`,
            version: sql`excluded.version`,
            updatedAt: sql`now()`,
          },
          setWhere: sql`excluded.version > ${books.version}`,
        })
        .returning({ id: books.id });
      const result = await this.#deadline.run('a snapshot upsert', upsert);
      written += result.length;
      if (i + UPSERT_CHUNK_ROWS < latest.length) await new Promise((resolve) => setImmediate(resolve));
    }
    this.stats.rowsWritten += written;
    return written;
  }
}

/** States serialized per batch, yielding between batches, so no chunk holds the event loop long (docs/performance.md, "Snapshot rounds in slices"). */
const SERIALIZE_BATCH = 100;

/** A JSON array of `states`, built without holding the event loop for more than one batch. */
async function serialize(states: readonly BookProgress[]): Promise<string> {
  const parts: string[] = [];
  for (let i = 0; i < states.length; i += SERIALIZE_BATCH) {
    if (i > 0) await new Promise((resolve) => setImmediate(resolve));
    parts.push(states.slice(i, i + SERIALIZE_BATCH).map((state) => JSON.stringify(state)).join(','));
  }
  return `[${parts.join(',')}]`;
}

/** One state per book, the newest: Postgres refuses to upsert one row twice in a statement. */
function newestPerBook(states: readonly BookProgress[]): BookProgress[] {
  const newest = new Map<string, BookProgress>();
  for (const state of states) {
    const seen = newest.get(state.bookId);
    if (!seen || state.version > seen.version) newest.set(state.bookId, state);
  }
  return [...newest.values()];
}
