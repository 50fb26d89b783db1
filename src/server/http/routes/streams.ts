import type { ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import type { Context } from 'hono';
import type { Caller } from '../../../auth/caller.js';
import { mayRead, mayWatch } from '../../../auth/caller.js';
import type { BookProgress } from '../../../progress/schema.js';
import { Refusal } from '../../../refusal.js';
import type { ConnectionCap } from '../../delivery/connection-cap.js';
import { EncodedState } from '../../delivery/encoded-state.js';
import type { Expiries } from '../../delivery/expiries.js';
import type { Hub } from '../../delivery/hub.js';
import { ProgressStream, SSE_HEADERS } from '../../delivery/sse-stream.js';
import type { Watched } from '../../delivery/sse-stream.js';
import type { StreamKind, StreamRegistry } from '../../delivery/stream-registry.js';
import { callerWith, headerValue } from '../auth.js';
import type { AppEnv } from '../auth.js';
import { parseBookId, parseBookList, parseLastEventId } from '../params.js';

export interface StreamRoutesOptions {
  hub: Hub;
  streams: StreamRegistry;
  sseRetryMs: number;
  /** MAX_SSE_CONNECTIONS (shared with WebSockets) and MAX_CONNECTIONS_PER_USER. */
  cap: ConnectionCap;
  maxBooksPerStream: number;
  /** The newest states of the recent books a caller may read, sent first on the every-book stream. */
  recentStates: (caller: Caller) => Promise<BookProgress[]>;
  /** Ends streams when their tokens expire. */
  expiries: Expiries;
}

type App = Hono<AppEnv>;

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
    return serve(c, options, caller, [bookId], 'sse');
  });

  const multiplexed: App = new Hono();
  multiplexed.get('/', (c) => {
    const caller = callerWith(c, 'progress:read');
    const books = c.req.query('books');
    if (books === undefined) return serve(c, options, caller, 'all', 'every-book');
    return serve(c, options, caller, parseBookList(books, options.maxBooksPerStream), 'multiplexed');
  });
  return { perBook, multiplexed };
}

async function serve(c: Context<AppEnv>, options: StreamRoutesOptions, caller: Caller, watched: Watched, kind: StreamKind): Promise<Response> {
  const { hub, streams } = options;
  // Hono answers HEAD by running GET and dropping the body: never open a stream for it.
  if (c.req.method === 'HEAD') return c.body(null, 200, SSE_HEADERS);
  // The Node request's parsed headers: asking Hono would build (and keep, for the stream's
  // lifetime) a Web Headers object per connection.
  const lastEventId = headerValue(c.env.incoming.headers['last-event-id']) ?? c.req.query('lastEventId');
  const known = watched === 'all' ? new Map<string, number>() : parseLastEventId(lastEventId, watched);
  const release = options.cap.admit(caller);

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
  const admits = watched === 'all' && !caller.anyTenant ? (update: EncodedState) => mayRead(caller, update.bookId, update.tenant) : null;
  const stream = new ProgressStream(c.env.outgoing as ServerResponse, watched, known, admits, () => {
    end();
    streams.delete(stream);
  });

  let first: Array<EncodedState | null>;
  try {
    if (watched === 'all') {
      await hub.joinAll(stream);
      first = (await options.recentStates(caller).catch(() => [])).map((state) => EncodedState.of(state));
    } else {
      const joins = await Promise.all(watched.map((bookId) => hub.join(bookId, stream, (current) => mayWatch(caller, bookId, current))));
      // A book the caller may not read is refused exactly as a missing one, and the stream carries nothing.
      const hidden = watched.find((_, i) => !joins[i]?.admitted);
      if (hidden !== undefined) throw new Refusal(404, 'not_found', `no progress for book ${hidden}`);
      first = joins.map((joined) => joined.current);
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
  streams.add(stream, { kind, tenant: caller.tenant });
  if (caller.expiresAt !== null) cancelExpiry = options.expiries.add(caller.expiresAt, () => stream.expire());
  stream.open(options.sseRetryMs);
  for (const update of first) if (update) stream.deliver(update);
  return RESPONSE_ALREADY_SENT;
}
