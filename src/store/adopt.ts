import { and, inArray, isNull, or, eq, sql } from 'drizzle-orm';
import type { Database } from './database.js';
import type { DatabaseDeadline } from './deadline.js';
import { books, runSpans, runTimelines } from './schema.js';

/** Books `--all-untenanted` assigns in one call at most; the command repeats until none is left. */
export const MAX_ADOPTED_PER_CALL = 1_000;

/**
 * Gives books without a tenant (made while authentication was off) to a tenant, in the
 * database: `books.tenant`, the progress JSON kept with it, and the analytics rows of their
 * runs, in one transaction. A book of another tenant is never taken; one already the tenant's
 * is answered again (so a call that failed half way can be repeated). The state in the broker
 * is the tracker's job (ProgressTracker.assignTenant): a new version every watcher sees.
 */
export class BookAdoption {
  readonly #db: Database;
  readonly #deadline: DatabaseDeadline;

  constructor(db: Database, deadline: DatabaseDeadline) {
    this.#db = db;
    this.#deadline = deadline;
  }

  /**
   * Assigns `tenant` to `bookIds` (null: every book without a tenant, up to MAX_ADOPTED_PER_CALL)
   * where they have none or already have it. Resolves to the books that are now the tenant's, and
   * for the others given, their tenant (null: no such row; the broker may still hold a state).
   */
  async adopt(tenant: string, bookIds: readonly string[] | null): Promise<{ adopted: string[]; others: Map<string, string | null> }> {
    if (bookIds !== null && bookIds.length === 0) return { adopted: [], others: new Map() };
    return this.#deadline.run('adopting books', this.#db.transaction(async (tx) => {
      const which =
        bookIds === null
          ? inArray(books.id, tx.select({ id: books.id }).from(books).where(isNull(books.tenant)).orderBy(books.createdAt, books.id).limit(MAX_ADOPTED_PER_CALL))
          : and(inArray(books.id, [...bookIds]), or(isNull(books.tenant), eq(books.tenant, tenant)));
      const rows = await tx
        .update(books)
        .set({
          tenant,
          progress: sql`case when ${books.progress} is null then null else jsonb_set(${books.progress}, '{tenant}', to_jsonb(${tenant}::text)) end`,
          updatedAt: sql`now()`,
        })
        .where(which)
        .returning({ id: books.id });
      const adopted = rows.map((row) => row.id);
      if (adopted.length > 0) {
        await tx.update(runTimelines).set({ tenant }).where(and(inArray(runTimelines.bookId, adopted), isNull(runTimelines.tenant)));
        await tx.update(runSpans).set({ tenant }).where(and(inArray(runSpans.bookId, adopted), isNull(runSpans.tenant)));
      }
      const others = new Map<string, string | null>();
      if (bookIds !== null) {
        const missing = bookIds.filter((id) => !adopted.includes(id));
        const found = missing.length === 0 ? [] : await tx.select({ id: books.id, tenant: books.tenant }).from(books).where(inArray(books.id, missing));
        for (const id of missing) others.set(id, found.find((row) => row.id === id)?.tenant ?? null);
      }
      return { adopted, others };
    }));
  }
}
