import { watch } from '../client.js';
import type { ConnectionState, WatchOptions } from '../client.js';
import { FrameBatch } from './frame-batch.js';
import type { BookProgress } from './guard.js';
import { sharedFeed } from './tabs.js';

/** How this page reaches the server: its own stream or polls, or through the tab-shared connection. */
export type Transport = 'sse' | 'polling' | 'shared-worker' | 'leader-tab' | 'follower-tab';

/** What the caller of watchBooks() is handed, at most once per animation frame (or `throttleMs`). */
export interface BooksUpdate {
  /** The newest state of each watched book that has one. */
  readonly books: ReadonlyMap<string, BookProgress>;
  /** The books whose state changed since the last call (a burst or a replay is merged: newest only). */
  readonly changed: readonly BookProgress[];
  readonly connection: ConnectionState;
  readonly transport: Transport;
  /** Polling because a proxy buffers the stream: its heartbeats and events stopped arriving. */
  readonly buffered: boolean;
  /** The last problem met (a token that could not be had, a server that does not answer), cleared when live again. */
  readonly error: Error | null;
}

export interface WatchBooksOptions extends Omit<WatchOptions, 'onConnection' | 'text' | 'onText' | 'onChapterSaved' | 'resumeFrom'> {
  /** Deliver at most every `throttleMs` instead of once per animation frame. */
  throttleMs?: number;
  /** Deliver nothing while the page is hidden (its state keeps current); the first visible frame catches up. */
  pauseWhenHidden?: boolean;
  /**
   * Share one server connection among all tabs of this origin: `true` (a SharedWorker when
   * `sharedWorkerUrl` is given and the browser has one, else a leader tab elected with Web
   * Locks relaying over BroadcastChannel), `'leader'` (always a leader tab), or false (default).
   */
  share?: boolean | 'leader';
  /** The shared worker script (served from this page's origin: the dashboard serves assets/shared-worker.js). */
  sharedWorkerUrl?: string | URL;
}

export interface BooksWatching {
  /** The newest state, also between calls (and while paused). */
  readonly current: BooksUpdate;
  close(): void;
}

/** Where states and connection changes come from: the page's own watch(), or the tab-shared one. */
export interface FeedSink {
  state(progress: BookProgress): void;
  connection(connection: ConnectionState, transport: Transport, buffered: boolean): void;
  error(error: Error): void;
}

/**
 * Watches books with render-safe delivery: every state is kept as it arrives (a version never
 * goes back), and `onUpdate` is called once per animation frame at most with everything that
 * changed. Transports and fallback are watch()'s: SSE, then polling, retrying SSE.
 */
export function watchBooks(books: readonly string[] | 'all', onUpdate: (update: BooksUpdate) => void, options: WatchBooksOptions = {}): BooksWatching {
  const ids = books === 'all' ? null : [...new Set(books)];
  const latest = new Map<string, BookProgress>();
  let changed = new Map<string, BookProgress>();
  let current: BooksUpdate = { books: latest, changed: [], connection: 'connecting', transport: 'sse', buffered: false, error: null };
  let closed = false;

  const batch = new FrameBatch(
    () => {
      current = { ...current, books: new Map(latest), changed: [...changed.values()] };
      changed = new Map();
      if (!closed) onUpdate(current);
    },
    { throttleMs: options.throttleMs, pauseWhenHidden: options.pauseWhenHidden },
  );

  const sink: FeedSink = {
    state(progress) {
      if (ids !== null && !ids.includes(progress.bookId)) return;
      const shown = latest.get(progress.bookId);
      if (shown && shown.version >= progress.version) return;
      latest.set(progress.bookId, progress);
      changed.set(progress.bookId, progress);
      batch.mark();
    },
    connection(connection, transport, buffered) {
      if (connection === current.connection && transport === current.transport && buffered === current.buffered) return;
      const error =
        connection === 'offline' ? new Error('the progress server does not answer')
        : buffered ? new Error('a proxy holds the stream back (buffering): polling instead')
        : connection === 'live' ? null
        : current.error;
      current = { ...current, connection, transport, buffered, error };
      batch.mark();
    },
    error(error) {
      current = { ...current, error };
      batch.mark();
    },
  };

  const feed = (options.share ? sharedFeed(ids, sink, options) : null) ?? ownFeed(ids, sink, options);
  return {
    get current() {
      // Kept current between calls too (a paused, hidden page): what the next call will bring.
      return changed.size === 0 ? current : { ...current, books: new Map(latest), changed: [...changed.values()] };
    },
    close() {
      closed = true;
      batch.close();
      feed.close();
    },
  };
}

/** The page's own connection. */
function ownFeed(ids: readonly string[] | null, sink: FeedSink, options: WatchBooksOptions): { close(): void } {
  const getToken = options.getToken;
  const watching = watch(ids ?? 'all', (p) => sink.state(p), {
    ...options,
    ...(getToken && {
      getToken: async (context: { refresh: boolean }) => {
        try {
          return await getToken(context);
        } catch (error) {
          sink.error(error instanceof Error ? error : new Error(String(error)));
          throw error;
        }
      },
    }),
    onConnection: (c, { buffered }) => sink.connection(c, c === 'polling' ? 'polling' : 'sse', buffered),
  });
  return watching;
}
