import type { HttpBindings } from '@hono/node-server';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import type { Broker } from '../broker/broker.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';
import type { BookProgress } from '../progress/schema.js';
import type { BookRecord, BookStore } from '../store/books.js';
import { requirePublishToken } from './auth.js';
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
  publishToken: string | null;
  basePath?: string;
}

/** `/api/books`: start a demo generation, list books, read one with its chapters. */
export function bookRoutes(options: BookRoutesOptions) {
  const { orchestrator, books, broker } = options;
  const app = new Hono<{ Bindings: HttpBindings }>();

  app.post('/', requirePublishToken(options.publishToken), bodyLimit({ maxSize: options.maxBodyBytes }), async (c) => {
    const parsed = BookRequestSchema.safeParse(await readJson(c));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ApiError(400, 'invalid_book', `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
    }
    const spec = await orchestrator.start(parsed.data);
    c.header('Location', `${options.basePath ?? ''}/api/books/${spec.bookId}`);
    return c.json({ success: true, data: { ...spec, status: 'PLANNING' } }, 201);
  });

  app.get('/', async (c) => {
    const query = ListQuerySchema.safeParse({ limit: c.req.query('limit') });
    if (!query.success) throw new ApiError(400, 'invalid_query', `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
    const rows = await books.listBooks(query.data.limit);
    const live = await liveStates(broker, rows.map((row) => row.id));
    return c.json({ success: true, data: rows.map((row, i) => present(row, live[i] ?? null)) });
  });

  app.get('/:bookId', async (c) => {
    const bookId = parseBookId(c);
    const book = await books.getBook(bookId);
    if (!book) throw new ApiError(404, 'not_found', `no book ${bookId}`);
    const [live] = await liveStates(broker, [bookId]);
    return c.json({ success: true, data: { ...present(book, live ?? null), chapters: book.chapters } });
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

/**
 * The newest progress of the most recent books, for the first events of the every-book stream.
 * A reconnect storm of list pages costs one query per RECENT_CACHE_MS, not one each.
 */
export function recentProgress(books: BookStore, broker: Broker): () => Promise<BookProgress[]> {
  let cached: { at: number; rows: Promise<BookRecord[]> } | null = null;
  return async () => {
    if (!cached || Date.now() - cached.at >= RECENT_CACHE_MS) {
      const rows = books.listBooks(RECENT_BOOKS);
      cached = { at: Date.now(), rows };
      rows.catch(() => (cached = null));
    }
    const rows = await cached.rows;
    const live = await liveStates(broker, rows.map((row) => row.id));
    return rows.map((row, i) => newest(row, live[i] ?? null)).filter((p): p is BookProgress => p !== null);
  };
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

function present(row: BookRecord, live: BookProgress | null) {
  const progress = newest(row, live);
  return {
    bookId: row.id,
    title: row.title,
    owner: row.owner,
    status: progress?.status ?? row.status,
    generationStep: progress?.generationStep ?? row.generationStep,
    progress,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}
