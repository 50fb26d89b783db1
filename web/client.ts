import { BookProgressSchema, isTerminal } from '../src/progress/schema.js';
import type { BookProgress } from '../src/progress/schema.js';

export type { BookProgress };

/** live: SSE connected; polling: SSE unavailable, polling works; offline: nothing answers; closed: done or closed. */
export type ConnectionState = 'connecting' | 'live' | 'polling' | 'offline' | 'closed';

type EventSourceLike = {
  readonly readyState: number;
  onopen: ((event: Event) => unknown) | null;
  onerror: ((event: Event) => unknown) | null;
  addEventListener(type: 'progress', listener: (event: MessageEvent<string>) => void): void;
  close(): void;
};
type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike;

export interface WatchOptions {
  /** Where the server's routes start: '' (same origin, at /), `/progress` (BASE_PATH), or `https://progress.example.com`. */
  baseUrl?: string;
  /**
   * Send cookies to a server on another origin (EventSource `withCredentials`, fetch
   * `credentials: 'include'`); the server must list this page's origin in CORS_ORIGINS.
   */
  withCredentials?: boolean;
  /** The EventSource class (Node: the `eventsource` package); without one the client polls. */
  EventSource?: EventSourceConstructor;
  fetch?: typeof fetch;
  /** Poll period while SSE is unavailable; the legacy pollers' 3 s by default. */
  pollIntervalMs?: number;
  /** Consecutive SSE failures before falling back to polling. */
  sseFailuresBeforePolling?: number;
  /** While polling, how often to try SSE again. */
  sseRetryMs?: number;
  onConnection?: (state: ConnectionState) => void;
}

export interface Watching {
  readonly connection: ConnectionState;
  /** The newest state shown per book. */
  readonly latest: ReadonlyMap<string, BookProgress>;
  close(): void;
}

const DEFAULTS = { pollIntervalMs: 3_000, sseFailuresBeforePolling: 3, sseRetryMs: 30_000 };
const MAX_RECONNECT_MS = 15_000;

/** Jittered exponential backoff: 0.5-1 x min(500 ms x 2^n, 15 s). */
export function reconnectDelay(failures: number): number {
  const ceiling = Math.min(MAX_RECONNECT_MS, 500 * 2 ** failures);
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/**
 * Watches books (or 'all': every book, for lists) and calls `onProgress` with each newer state.
 * Uses one SSE connection; after repeated SSE failures it polls every 3 s with If-None-Match
 * and keeps trying SSE again. A version older than one already shown is never passed on.
 * Stops by itself once every watched book is COMPLETE or ERROR.
 */
export function watch(books: readonly string[] | 'all', onProgress: (progress: BookProgress) => void, options: WatchOptions = {}): Watching {
  const base = options.baseUrl ?? '';
  const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
  const credentials: RequestCredentials = options.withCredentials ? 'include' : 'same-origin';
  const EventSourceClass = options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource;
  const settings = { ...DEFAULTS, ...options };
  const ids = books === 'all' ? null : [...new Set(books)];
  const latest = new Map<string, BookProgress>();

  let connection: ConnectionState = 'connecting';
  let source: EventSourceLike | null = null;
  let sseFailures = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let pollTimer: ReturnType<typeof setTimeout> | null = null;
  let closed = false;

  const setConnection = (next: ConnectionState) => {
    if (connection === next) return;
    connection = next;
    options.onConnection?.(next);
  };

  const finished = () => ids !== null && ids.every((id) => {
    const state = latest.get(id);
    return state !== undefined && isTerminal(state.status);
  });

  const accept = (raw: unknown) => {
    const parsed = BookProgressSchema.safeParse(raw);
    if (!parsed.success) return;
    const state = parsed.data;
    if (ids !== null && !ids.includes(state.bookId)) return;
    const shown = latest.get(state.bookId);
    if (shown && state.version <= shown.version) return;
    latest.set(state.bookId, state);
    onProgress(state);
    if (finished()) stop();
  };

  const streamUrl = () => {
    if (ids === null) return `${base}/api/ai/stream`;
    const path = ids.length === 1 ? `/api/ai/progress/${encodeURIComponent(ids[0] as string)}/stream` : `/api/ai/stream?books=${ids.map(encodeURIComponent).join(',')}`;
    const known = ids.map((id) => latest.get(id)?.version ?? 0);
    if (known.every((v) => v === 0)) return `${base}${path}`;
    return `${base}${path}${path.includes('?') ? '&' : '?'}lastEventId=${known.join('.')}`;
  };

  const connectSse = () => {
    if (closed || !EventSourceClass) return;
    const es = options.withCredentials ? new EventSourceClass(streamUrl(), { withCredentials: true }) : new EventSourceClass(streamUrl());
    source = es;
    es.addEventListener('progress', (event) => {
      try {
        accept(JSON.parse(event.data));
      } catch {
        // A frame that is not JSON is not ours: ignore it.
      }
    });
    es.onopen = () => {
      sseFailures = 0;
      stopPolling();
      setConnection('live');
    };
    es.onerror = () => {
      // We manage reconnects ourselves (backoff, fallback), not the browser's fixed retry.
      es.close();
      if (source === es) source = null;
      if (closed || finished()) return stop();
      sseFailures++;
      if (sseFailures >= settings.sseFailuresBeforePolling) {
        startPolling();
        schedule(settings.sseRetryMs, connectSse);
      } else {
        if (connection !== 'polling') setConnection('connecting');
        schedule(reconnectDelay(sseFailures), connectSse);
      }
    };
  };

  const schedule = (ms: number, task: () => void) => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      task();
    }, ms);
  };

  const pollOnce = async () => {
    const targets = ids === null ? [null] : ids.filter((id) => !isTerminal(latest.get(id)?.status ?? 'PLANNING'));
    let answered = false;
    await Promise.all(
      targets.map(async (id) => {
        try {
          if (id === null) {
            const res = await doFetch(`${base}/api/books`, { cache: 'no-store', credentials });
            answered = true;
            if (!res.ok) return;
            const body = (await res.json()) as { data?: Array<{ progress?: unknown }> };
            for (const book of body.data ?? []) if (book.progress) accept(book.progress);
            return;
          }
          const shown = latest.get(id);
          const headers: Record<string, string> = shown ? { 'If-None-Match': `"${shown.version}"` } : {};
          const res = await doFetch(`${base}/api/ai/progress/${encodeURIComponent(id)}`, { headers, cache: 'no-store', credentials });
          answered = true;
          if (res.status === 200) accept(((await res.json()) as { data?: unknown }).data);
        } catch {
          // Network error: counted as not answered.
        }
      }),
    );
    if (closed || (source !== null && connection === 'live')) return;
    setConnection(answered ? 'polling' : 'offline');
  };

  const startPolling = () => {
    if (pollTimer !== null || closed) return;
    const loop = async () => {
      await pollOnce();
      if (!closed && pollTimer !== null) pollTimer = setTimeout(() => void loop(), settings.pollIntervalMs);
    };
    pollTimer = setTimeout(() => void loop(), 0);
  };

  const stopPolling = () => {
    if (pollTimer !== null) clearTimeout(pollTimer);
    pollTimer = null;
  };

  const stop = () => {
    closed = true;
    source?.close();
    source = null;
    if (timer) clearTimeout(timer);
    stopPolling();
    setConnection('closed');
  };

  if (EventSourceClass) connectSse();
  else startPolling();

  return {
    get connection() {
      return connection;
    },
    latest,
    close: stop,
  };
}
