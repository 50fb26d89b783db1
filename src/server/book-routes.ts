import { Hono } from 'hono';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import type { Broker } from '../broker/broker.js';
import { RunRequestError } from '../orchestrator/orchestrator.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';
import type { BookProgress } from '../progress/schema.js';
import type { BookRecord, BookStore, TenantFilter } from '../store/books.js';
import type { RunState } from '../store/runs.js';
import type { Caller } from '../auth/caller.js';
import { mayRead, mayWrite } from '../auth/caller.js';
import { callerWith } from './auth.js';
import type { AppEnv } from './auth.js';
import { ApiError } from './errors.js';
import { parseBookId, readJson } from './request.js';

export const MAX_CHAPTERS = 50;
export const MAX_SECTIONS_PER_CHAPTER = 20;
const MAX_LIST_LIMIT = 500;

const BookRequestSchema = z
  .object({
    title: z.string().trim().min(1).max(200),
    chapters: z.number().int().min(1).max(MAX_CHAPTERS).default(5),
    sectionsPerChapter: z.number().int().min(1).max(MAX_SECTIONS_PER_CHAPTER).default(3),
  })
  .strict();

const ListQuerySchema = z.object({ limit: z.coerce.number().int().min(1).max(MAX_LIST_LIMIT).default(100) });

export interface BookRoutesOptions {
  orchestrator: Orchestrator;
  books: BookStore;
  broker: Broker;
  maxBodyBytes: number;
  basePath?: string;
}

/** `/api/books`: start a demo generation, list books, read one with its chapters, cancel or retry one. */
export function bookRoutes(options: BookRoutesOptions) {
  const { orchestrator, books, broker } = options;
  const app = new Hono<AppEnv>();

  app.post('/', bodyLimit({ maxSize: options.maxBodyBytes }), async (c) => {
    const caller = callerWith(c, 'books:write');
    const parsed = BookRequestSchema.safeParse(await readJson(c));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ApiError(400, 'invalid_book', `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
    }
    const spec = await orchestrator.start({ ...parsed.data, tenant: caller.tenant, owner: caller.sub });
    c.header('Location', `${options.basePath ?? ''}/api/books/${spec.bookId}`);
    return c.json({ success: true, data: { ...spec, status: 'PLANNING' } }, 201);
  });

  app.get('/', async (c) => {
    const caller = callerWith(c, 'progress:read');
    const query = ListQuerySchema.safeParse({ limit: c.req.query('limit') });
    if (!query.success) throw new ApiError(400, 'invalid_query', `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
    const rows = await books.listBooks(query.data.limit, tenantFilter(caller));
    const ids = rows.map((row) => row.id);
    const [live, runs] = await Promise.all([liveStates(broker, ids), orchestrator.runStates(ids)]);
    return c.json({ success: true, data: rows.map((row, i) => present(row, readableState(caller, live[i] ?? null), runs.get(row.id))) });
  });

  app.get('/:bookId', async (c) => {
    const caller = callerWith(c, 'progress:read');
    const bookId = parseBookId(c);
    const book = await books.getBook(bookId);
    if (!book || !mayRead(caller, bookId, book.tenant ?? undefined)) throw new ApiError(404, 'not_found', `no book ${bookId}`);
    const [[live], runs] = await Promise.all([liveStates(broker, [bookId]), orchestrator.runStates([bookId])]);
    return c.json({ success: true, data: { ...present(book, readableState(caller, live ?? null), runs.get(bookId)), chapters: book.chapters } });
  });

  /** The book's id, once the caller may change it: 404 for another tenant's, as for an unknown one. */
  const writableBook = async (c: Context<AppEnv>): Promise<string> => {
    const caller = callerWith(c, 'books:write');
    const bookId = parseBookId(c);
    const tenant = await books.tenantOf(bookId);
    if (tenant === undefined || !mayWrite(caller, tenant ?? undefined)) throw new ApiError(404, 'not_found', `no book ${bookId}`);
    return bookId;
  };

  // Cancel and retry answer 404 for an unknown book and 409 for one in the wrong state.
  app.post('/:bookId/cancel', async (c) => {
    const bookId = await writableBook(c);
    const state = await refusalsAsHttp(() => orchestrator.cancel(bookId));
    return c.json({ success: true, data: state });
  });

  app.post('/:bookId/retry', async (c) => {
    const bookId = await writableBook(c);
    const state = await refusalsAsHttp(() => orchestrator.retry(bookId));
    return c.json({ success: true, data: state }, 202);
  });

  return app;
}

/** Books whose states open the every-book stream. */
export const RECENT_BOOKS = 100;
/**
 * Connections opened within this long share one database read of the recent books (their
 * states are read from the broker each time). Shorter than the every-book stream's retry after
 * a gap, so a list that resyncs always reads a fresh list.
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
export function recentProgress(books: BookStore, broker: Broker): (caller: Caller) => Promise<BookProgress[]> {
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
    const rows = await entry.rows;
    const live = await liveStates(broker, rows.map((row) => row.id));
    // Rows are the tenant's in Postgres; each state is checked too, as the live path checks it.
    return rows.map((row, i) => newest(row, live[i] ?? null)).filter((p): p is BookProgress => p !== null && mayRead(caller, p.bookId, p.tenant));
  };
}

/** `state` if the caller may read it (the row was checked in Postgres, the state is checked as the live path does), else null. */
function readableState(caller: Caller, state: BookProgress | null): BookProgress | null {
  return state !== null && mayRead(caller, state.bookId, state.tenant) ? state : null;
}

function newest(row: BookRecord, live: BookProgress | null): BookProgress | null {
  return live && live.version >= row.version ? live : row.progress;
}

/** The newest progress: the broker's when it answers, else the snapshot in the row. */
async function liveStates(broker: Broker, bookIds: string[]): Promise<Array<BookProgress | null>> {
  try {
    return await broker.getMany(bookIds);
  } catch {
    return bookIds.map(() => null);
  }
}

async function refusalsAsHttp<T>(request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (error) {
    if (error instanceof RunRequestError) throw new ApiError(error.reason === 'unknown' ? 404 : 409, error.reason === 'unknown' ? 'not_found' : 'invalid_state', error.message);
    throw error;
  }
}

/** `run`: where the book stands in the generation queue; null for a book an outside worker publishes. */
function present(row: BookRecord, live: BookProgress | null, run: RunState | undefined) {
  const progress = newest(row, live);
  return {
    bookId: row.id,
    title: row.title,
    owner: row.owner,
    status: progress?.status ?? row.status,
    generationStep: progress?.generationStep ?? row.generationStep,
    run: run ?? null,
    progress,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}
