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
import { parseBookId, parseBookList, parseStreamResume } from '../params.js';
import type { TextLog } from '../../../broker/text-log.js';
import type { FindNewest } from '../../delivery/newest-state.js';
import { TextFeed, parseTextFrom } from '../../delivery/text-feed.js';
import type { TextCursor } from '../../delivery/text-feed.js';

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
  /** Live text, for streams opened with `?text=1`. */
  texts: TextLog;
  /** Whose book it is, for every-book streams with text (asked once per book and stream). */
  findNewest: FindNewest;
}

/** How soon a client ended for falling behind on text reconnects (it resumes from its last id). */
const TEXT_BACKLOG_RETRY_MS = 250;

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
  const resume = watched === 'all' ? { versions: new Map<string, number>(), texts: new Map<string, TextCursor | null>() } : parseStreamResume(lastEventId, watched);
  const known = resume.versions;
  const withText = ['1', 'true'].includes(c.req.query('text') ?? '');
  const delta = c.req.query('delta');
  if (delta !== undefined && delta !== 'merge-patch') throw new Refusal(400, 'invalid_delta', 'delta must be merge-patch');
  const textFrom = c.req.query('textFrom');
  if (textFrom !== undefined) {
    const cursor = parseTextFrom(textFrom);
    if (!withText || watched === 'all' || watched.length !== 1 || cursor === undefined) {
      throw new Refusal(400, 'invalid_text_from', 'textFrom must be <chapter>:<section>:<offset>, on a stream of one book with text=1');
    }
    // Last-Event-ID, when the browser sends one, is newer than the URL the stream was first opened with.
    if (!resume.texts.has(watched[0] as string)) resume.texts.set(watched[0] as string, cursor);
  }
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
  }, delta === 'merge-patch');
  if (['1', 'true'].includes(c.req.query('heartbeats') ?? '')) stream.visibleHeartbeats(streams.heartbeatMs);

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
  if (withText) {
    try {
      await followText(options, caller, stream, watched, resume.texts);
    } catch (error) {
      end();
      throw error;
    }
    if (stream.ended) return RESPONSE_ALREADY_SENT;
  }
  streams.add(stream, { kind, tenant: caller.tenant });
  if (caller.expiresAt !== null) cancelExpiry = options.expiries.add(caller.expiresAt, () => stream.expire());
  stream.open(options.sseRetryMs);
  for (const update of first) if (update) stream.deliver(update);
  return RESPONSE_ALREADY_SENT;
}

/** Attaches live text to an admitted stream and reads what a resuming client lacks, before the stream opens. */
async function followText(options: StreamRoutesOptions, caller: Caller, stream: ProgressStream, watched: Watched, known: ReadonlyMap<string, TextCursor | null>): Promise<void> {
  const admits = watched === 'all' && !caller.anyTenant
    ? async (bookId: string) => {
        const found = await options.findNewest(bookId);
        return found !== null && mayRead(caller, bookId, found.state.tenant);
      }
    : undefined;
  const feed = new TextFeed(options.texts, {
    onDue: () => stream.textDue(),
    onOverflow: () => stream.close(TEXT_BACKLOG_RETRY_MS),
    ...(admits ? { admits } : {}),
  });
  stream.attachText(feed);
  try {
    if (watched === 'all') await feed.addAll();
    else await Promise.all(watched.map((bookId) => feed.add(bookId, known.get(bookId) ?? null)));
  } catch (error) {
    feed.close();
    throw error;
  }
}
