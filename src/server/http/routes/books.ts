import { Hono } from 'hono';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import type { Caller } from '../../../auth/caller.js';
import { mayRead, mayWrite } from '../../../auth/caller.js';
import type { TextLog } from '../../../broker/text-log.js';
import type { Orchestrator } from '../../../orchestrator/orchestrator.js';
import type { BookTimeline } from '../../../analytics/queries.js';
import { MAX_CHAPTERS, MAX_SECTIONS_PER_CHAPTER } from '../../../progress/schema.js';
import type { BookProgress } from '../../../progress/schema.js';
import { withStall } from '../../../progress/stall.js';
import { Refusal } from '../../../refusal.js';
import type { BookRecord, BookStore } from '../../../store/books.js';
import type { RunState } from '../../../store/runs.js';
import type { NewestStates } from '../../delivery/newest-state.js';
import { tenantFilter } from '../../delivery/recent-books.js';
import { startsCharacter } from '../../delivery/text-feed.js';
import type { BookStartedSchema, BookSummarySchema, ChapterTextSchema } from '../api-schemas.js';
import { PRIVATE_HEADERS, callerWith } from '../auth.js';
import { chapterTag, liveChapter, savedChapter } from '../chapter-text.js';
import type { AppEnv } from '../auth.js';
import { parseBookId, readJson } from '../params.js';

export { MAX_CHAPTERS, MAX_SECTIONS_PER_CHAPTER };
export const MAX_LIST_LIMIT = 500;

/** `POST /api/books`: a demo generation to start. */
export const BookRequestSchema = z
  .object({
    title: z.string().trim().min(1).max(200),
    chapters: z.number().int().min(1).max(MAX_CHAPTERS).default(5),
    sectionsPerChapter: z.number().int().min(1).max(MAX_SECTIONS_PER_CHAPTER).default(3),
  })
  .strict();

/** `GET /api/books?limit=`. */
export const ListQuerySchema = z.object({ limit: z.coerce.number().int().min(1).max(MAX_LIST_LIMIT).default(100) });
/** `GET /api/books/:bookId/chapters/:n?from=`: the chapter number and the byte offset to read from. */
export const ChapterQuerySchema = z.object({ n: z.coerce.number().int().min(1).max(1_000_000), from: z.coerce.number().int().min(0).default(0) });

export interface BookRoutesOptions {
  orchestrator: Orchestrator;
  books: BookStore;
  newest: NewestStates;
  /** The live text of the chapters being written. */
  texts: TextLog;
  maxBodyBytes: number;
  basePath?: string;
  staleAfterMs: number;
  timeline: (bookId: string) => Promise<BookTimeline | null>;
}

/** `/api/books`: start a demo generation, list books, read one with its chapters, cancel or retry one. */
export function bookRoutes(options: BookRoutesOptions) {
  const { orchestrator, books, newest } = options;
  const stalled = (state: BookProgress | null, now: number) => (state === null ? null : withStall(state, now, options.staleAfterMs));
  const app = new Hono<AppEnv>();

  app.post('/', bodyLimit({ maxSize: options.maxBodyBytes }), async (c) => {
    const caller = callerWith(c, 'books:write');
    const parsed = BookRequestSchema.safeParse(await readJson(c));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Refusal(400, 'invalid_book', `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
    }
    const spec = await orchestrator.start({ ...parsed.data, tenant: caller.tenant, owner: caller.sub });
    c.header('Location', `${options.basePath ?? ''}/api/books/${spec.bookId}`);
    return c.json({ success: true, data: { ...spec, status: 'PLANNING' } satisfies z.input<typeof BookStartedSchema> }, 201);
  });

  app.get('/', async (c) => {
    const caller = callerWith(c, 'progress:read');
    const query = ListQuerySchema.safeParse({ limit: c.req.query('limit') });
    if (!query.success) throw new Refusal(400, 'invalid_query', `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`);
    const rows = await books.listBooks(query.data.limit, tenantFilter(caller));
    const [states, runs] = await Promise.all([newest.ofRows(rows, readable(caller)), orchestrator.runStates(rows.map((row) => row.id))]);
    const now = Date.now();
    return c.json({ success: true, data: rows.map((row, i) => present(row, stalled(states[i] ?? null, now), runs.get(row.id))) });
  });

  app.get('/:bookId', async (c) => {
    const caller = callerWith(c, 'progress:read');
    const bookId = parseBookId(c);
    const book = await books.getBook(bookId);
    if (!book || !mayRead(caller, bookId, book.tenant ?? undefined)) throw new Refusal(404, 'not_found', `no book ${bookId}`);
    const [[state], runs] = await Promise.all([newest.ofRows([book], readable(caller)), orchestrator.runStates([bookId])]);
    return c.json({ success: true, data: { ...present(book, stalled(state ?? null, Date.now()), runs.get(bookId)), chapters: book.chapters } });
  });

  /** The book's latest recorded run: its steps and chapters with their times (analytics). */
  app.get('/:bookId/timeline', async (c) => {
    const caller = callerWith(c, 'progress:read');
    const bookId = parseBookId(c);
    const tenant = await books.tenantOf(bookId);
    if (tenant === undefined || !mayRead(caller, bookId, tenant ?? undefined)) throw new Refusal(404, 'not_found', `no book ${bookId}`);
    const timeline = await options.timeline(bookId);
    if (timeline === null) throw new Refusal(404, 'not_found', `no timeline recorded for book ${bookId}`);
    const { tenant: _tenant, ...shown } = timeline;
    return c.json({ success: true, data: shown });
  });

  /**
   * One chapter's text from byte `from`: the saved chapter (Postgres), else the chapter being
   * written (the text log). `from` past the length answers from 0 with `reset: true` (the text started over).
   */
  app.get('/:bookId/chapters/:n', async (c) => {
    const caller = callerWith(c, 'progress:read');
    const bookId = parseBookId(c);
    const query = ChapterQuerySchema.safeParse({ n: c.req.param('n'), from: c.req.query('from') || undefined });
    if (!query.success) throw new Refusal(400, 'invalid_query', 'the chapter must be a positive integer, and from a byte offset (an integer from 0)');
    const { n, from } = query.data;
    const book = await books.getBook(bookId);
    const tenant = book ? (book.tenant ?? undefined) : (await newest.find(bookId))?.state.tenant;
    const missing = new Refusal(404, 'not_found', `no chapter ${n} of book ${bookId}`);
    if (!mayRead(caller, bookId, tenant)) throw missing;
    const record = book?.chapters.find((chapter) => chapter.number === n);
    const chapter = record ? savedChapter(record) : await liveChapter(options.texts, bookId, n);
    if (!chapter) throw missing;
    const etag = chapterTag(chapter);
    const headers = { ETag: etag, ...PRIVATE_HEADERS };
    if (c.req.header('if-none-match') === etag) return c.body(null, 304, headers);
    const reset = from > chapter.bytes.length;
    // Answers end on characters: a `from` inside one is no poller's, and the text would not decode.
    if (!reset && !startsCharacter(chapter.bytes, from)) throw new Refusal(400, 'invalid_query', `from ${from} is inside a UTF-8 character of chapter ${n}`);
    const start = reset ? 0 : from;
    const data = {
      bookId,
      chapter: n,
      title: chapter.title,
      saved: chapter.saved,
      from: start,
      length: chapter.bytes.length,
      text: chapter.bytes.subarray(start).toString('utf8'),
      ...(reset ? { reset: true } : {}),
      ...(chapter.saved ? {} : { sections: [...chapter.sections] }),
    } satisfies z.input<typeof ChapterTextSchema>;
    return c.json({ success: true, data }, 200, headers);
  });

  /** The book's id, once the caller may change it: 404 for another tenant's, as for an unknown one. */
  const writableBook = async (c: Context<AppEnv>): Promise<string> => {
    const caller = callerWith(c, 'books:write');
    const bookId = parseBookId(c);
    const tenant = await books.tenantOf(bookId);
    if (tenant === undefined || !mayWrite(caller, tenant ?? undefined)) throw new Refusal(404, 'not_found', `no book ${bookId}`);
    return bookId;
  };

  // Cancel and retry answer 404 for an unknown book and 409 for one in the wrong state (see errors.ts).
  app.post('/:bookId/cancel', async (c) => {
    const bookId = await writableBook(c);
    // 202: cancelled, and its final state still lands in the background (a backend is slow).
    const { state, final } = await orchestrator.cancel(bookId);
    return c.json({ success: true, data: state }, final ? 200 : 202);
  });

  app.post('/:bookId/retry', async (c) => {
    const bookId = await writableBook(c);
    const state = await orchestrator.retry(bookId);
    return c.json({ success: true, data: state }, 202);
  });

  return app;
}

/** Which live states the caller may see (the rows were checked in Postgres; each state is checked as the live path does). */
function readable(caller: Caller): (state: BookProgress) => boolean {
  return (state) => mayRead(caller, state.bookId, state.tenant);
}

/**
 * `progress`: the book's newest state (see NewestStates.ofRows). `run`: where the book stands in
 * the generation queue; null for a book an outside worker publishes.
 */
function present(row: BookRecord, progress: BookProgress | null, run: RunState | undefined): BookSummary {
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

/** A book as the books API answers it (api-schemas.ts), before JSON turns its dates into strings. */
type BookSummary = Omit<z.input<typeof BookSummarySchema>, 'createdAt' | 'updatedAt' | 'status' | 'generationStep'> & {
  /** Postgres's column when no state is at hand: a status, typed as text there. */
  status: string;
  generationStep: string;
  createdAt: Date;
  updatedAt: Date;
};
