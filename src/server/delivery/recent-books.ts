import type { Caller } from '../../auth/caller.js';
import { mayRead } from '../../auth/caller.js';
import type { BookProgress } from '../../progress/schema.js';
import type { BookRecord, BookStore, TenantFilter } from '../../store/books.js';
import type { NewestStates } from './newest-state.js';

/** Books whose states open the every-book stream. */
export const RECENT_BOOKS = 100;
/**
 * Connections opened within this long share one database read of the recent books (their
 * states are read from the broker each time). The every-book stream's retry after a gap is
 * derived from it, so a list that resyncs always reads a fresh list.
 */
export const RECENT_CACHE_MS = 1_000;

/** The books a caller may list: null for every book (admins, open mode). */
export function tenantFilter(caller: Caller): TenantFilter | null {
  return caller.anyTenant ? null : { tenant: caller.tenant as string, books: caller.books };
}

/**
 * The newest progress of the most recent books a caller may read, for the first events of the
 * every-book stream. A reconnect storm of list pages costs one query per tenant per
 * RECENT_CACHE_MS, not one each.
 */
export function recentProgress(books: BookStore, newest: NewestStates): (caller: Caller) => Promise<BookProgress[]> {
  const cached = new Map<string, { at: number; rows: Promise<BookRecord[]> }>();
  return async (caller) => {
    const filter = tenantFilter(caller);
    // A `books` claim narrows one user's list: such lists are read for that caller alone.
    const key = filter === null ? '' : filter.books === null ? `tenant:${filter.tenant}` : null;
    const now = Date.now();
    let entry = key === null ? undefined : cached.get(key);
    if (!entry || now - entry.at >= RECENT_CACHE_MS) {
      for (const [k, old] of cached) if (now - old.at >= RECENT_CACHE_MS) cached.delete(k);
      const rows = books.listBooks(RECENT_BOOKS, filter);
      entry = { at: now, rows };
      if (key !== null) {
        cached.set(key, entry);
        rows.catch(() => cached.delete(key));
      }
    }
    const states = await newest.ofRows(await entry.rows);
    // Rows are the tenant's in Postgres; each state is checked too, as the live path checks it.
    return states.filter((p): p is BookProgress => p !== null && mayRead(caller, p.bookId, p.tenant));
  };
}
