import type { ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import type { Context } from 'hono';
import type { Caller } from '../auth/caller.js';
import { mayRead, mayWatch } from '../auth/caller.js';
import { BookIdSchema } from '../progress/schema.js';
import type { BookProgress } from '../progress/schema.js';
import { callerWith } from './auth.js';
import type { AppEnv } from './auth.js';
import { ApiError } from './errors.js';
import type { Expiries } from './expiries.js';
import type { Hub } from './hub.js';
import { parseBookId } from './request.js';
import { ProgressStream, SSE_HEADERS } from './stream.js';
import type { StreamRegistry, Watched } from './stream.js';
import { Update } from './update.js';
import type { UserConnections } from './user-connections.js';

export interface StreamRoutesOptions {
  hub: Hub;
  streams: StreamRegistry;
  sseRetryMs: number;
  connectionsFull: () => boolean;
  maxBooksPerStream: number;
  /** The latest states of the recent books a caller may read, sent first on the every-book stream. */
  recentStates: (caller: Caller) => Promise<BookProgress[]>;
  /** Ends streams when their tokens expire. */
  expiries: Expiries;
  /** MAX_CONNECTIONS_PER_USER. */
  userConnections: UserConnections;
}

type App = Hono<AppEnv>;

/** Seconds a user at MAX_CONNECTIONS_PER_USER should wait before opening another stream or WebSocket. */
export const USER_LIMIT_RETRY_AFTER_SECONDS = 5;

/**
 * The SSE endpoints: `GET /api/ai/progress/:bookId/stream` (one book), and `GET /api/ai/stream`
 * with `?books=a,b,c` (several books on one connection) or without (every book the caller may
 * read, for lists).
 */
export function streamRoutes(options: StreamRoutesOptions): { perBook: App; multiplexed: App } {
  const perBook: App = new Hono();
  perBook.get('/:bookId/stream', (c) => {
    const caller = callerWith(c, 'progress:read');
    const bookId = parseBookId(c);
    return serve(c, options, caller, [bookId]);
  });

  const multiplexed: App = new Hono();
  multiplexed.get('/', (c) => {
    const caller = callerWith(c, 'progress:read');
    const books = c.req.query('books');
    if (books === undefined) return serve(c, options, caller, 'all');
    return serve(c, options, caller, parseBookList(books, options.maxBooksPerStream));
  });
  return { perBook, multiplexed };
}

async function serve(c: Context<AppEnv>, options: StreamRoutesOptions, caller: Caller, watched: Watched): Promise<Response> {
  const { hub, streams } = options;
  // Hono answers HEAD by running GET and dropping the body: never open a stream for it.
  if (c.req.method === 'HEAD') return c.body(null, 200, SSE_HEADERS);
  // The Node request's parsed headers: asking Hono would build (and keep, for the stream's
  // lifetime) a Web Headers object per connection.
  const header = c.env.incoming.headers['last-event-id'];
  const lastEventId = (Array.isArray(header) ? header[0] : header) ?? c.req.query('lastEventId');
  const known = watched === 'all' ? new Map<string, number>() : parseLastEventId(lastEventId, watched);
  if (options.connectionsFull()) {
    throw new ApiError(503, 'too_many_connections', 'this server holds its maximum of streams; retry later or elsewhere');
  }
  const release = options.userConnections.acquireFor(caller);
  if (release === null) {
    throw new ApiError(429, 'too_many_connections', 'this user holds its maximum of open streams and WebSockets; close one first', USER_LIMIT_RETRY_AFTER_SECONDS);
  }

  let cancelExpiry: (() => void) | null = null;
  const leave = () => {
    if (watched === 'all') hub.leaveAll(stream);
    else for (const bookId of watched) hub.leave(bookId, stream);
  };
  const end = () => {
    leave();
    cancelExpiry?.();
    release();
  };
  const admits = watched === 'all' && !caller.anyTenant ? (update: Update) => mayRead(caller, update.bookId, update.tenant) : null;
  const stream = new ProgressStream(c.env.outgoing as ServerResponse, watched, known, admits, () => {
    end();
    streams.delete(stream);
  });

  let first: Array<Update | null>;
  try {
    if (watched === 'all') {
      await hub.joinAll(stream);
      first = (await options.recentStates(caller).catch(() => [])).map((state) => Update.of(state));
    } else {
      const joins = await Promise.all(watched.map((bookId) => hub.join(bookId, stream, (latest) => mayWatch(caller, bookId, latest))));
      // A book the caller may not read is refused exactly as a missing one, and the stream carries nothing.
      const hidden = watched.find((_, i) => !joins[i]?.admitted);
      if (hidden !== undefined) throw new ApiError(404, 'not_found', `no progress for book ${hidden}`);
      first = joins.map((joined) => joined.latest);
      // A client that already has every final state must stop reconnecting: 204 tells EventSource so.
      const done = first.every((u) => u !== null && u.terminal && u.version <= (known.get(u.bookId) ?? 0));
      if (done) {
        end();
        return c.body(null, 204);
      }
    }
  } catch (error) {
    end();
    throw error;
  }
  if (stream.ended) {
    // The client hung up while we joined: its end ran before the joins added it to the topics.
    leave();
    return RESPONSE_ALREADY_SENT;
  }
  streams.add(stream);
  if (caller.expiresAt !== null) cancelExpiry = options.expiries.add(caller.expiresAt, () => stream.expire());
  stream.open(options.sseRetryMs);
  for (const update of first) if (update) stream.deliver(update);
  return RESPONSE_ALREADY_SENT;
}

function parseBookList(raw: string, max: number): string[] {
  const ids = [...new Set(raw.split(',').filter((id) => id !== ''))];
  if (ids.length === 0) throw new ApiError(400, 'invalid_books', 'books must list at least one bookId, comma-separated');
  if (ids.length > max) throw new ApiError(400, 'too_many_books', `a stream carries at most ${max} books; got ${ids.length}`);
  for (const id of ids) {
    if (!BookIdSchema.safeParse(id).success) throw new ApiError(400, 'invalid_book_id', 'each bookId must be 1-128 characters of A-Z, a-z, 0-9, "_" or "-"');
  }
  return ids;
}

/** Versions the client has: `12` for one book, `12.7.0` for a list (list order). */
function parseLastEventId(raw: string | undefined, books: readonly string[]): Map<string, number> {
  const known = new Map<string, number>();
  if (raw === undefined || raw === '') return known;
  const parts = raw.split('.');
  if (parts.length !== books.length || !parts.every((p) => /^\d{1,15}$/.test(p))) {
    throw new ApiError(400, 'invalid_last_event_id', 'Last-Event-ID must be the id of an event this stream sent: versions joined by "."');
  }
  books.forEach((bookId, i) => known.set(bookId, Number(parts[i])));
  return known;
}
