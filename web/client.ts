import { jitteredBackoff } from '../src/backoff.js';
import { isTerminal, parseBookProgress } from './sdk/guard.js';
import type { BookProgress } from './sdk/guard.js';
import { LiveText } from './live-text.js';
import type { SectionTextUpdate } from './live-text.js';
import { PatchedStates } from './merge-patch.js';

export type { BookProgress, SectionTextUpdate };

/** live: SSE connected; polling: SSE unavailable, polling works; offline: nothing answers; closed: done or closed. */
export type ConnectionState = 'connecting' | 'live' | 'polling' | 'offline' | 'closed';

type EventSourceLike = {
  readonly readyState: number;
  onopen: ((event: Event) => unknown) | null;
  onerror: ((event: Event) => unknown) | null;
  addEventListener(type: 'progress' | 'patch' | 'auth' | 'text' | 'chapter' | 'heartbeat', listener: (event: MessageEvent<string>) => void): void;
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
  /** `buffered`: polling because a proxy held the open stream's events back (see heartbeatMs). */
  onConnection?: (state: ConnectionState, detail: { buffered: boolean }) => void;
  /**
   * The server's HEARTBEAT_MS, until an open stream says it. A stream that brings nothing (no
   * event, no heartbeat; or not even its headers) for two periods is held back by a buffering
   * proxy: the client polls, and reports `buffered`.
   */
  heartbeatMs?: number;
  /** A token for a server with authentication (sent as ?access_token= to EventSource, Bearer to fetch). */
  token?: string;
  /**
   * Asked for a token at every (re)connection: return a cached one while it is valid. `refresh`
   * is true after the server said the token expired or was refused (`event: auth`, a 401 on a
   * poll): then return a fresh one. Wins over `token`.
   */
  getToken?: (context: { refresh: boolean }) => string | Promise<string>;
  /**
   * The live text of the sections being written too (SSE only): `onText` gets each section's
   * text as it grows (merged, at most once per animation frame), or a reset. Reconnects resume
   * where the text left off, with nothing replayed or missing.
   */
  text?: boolean;
  onText?: (update: SectionTextUpdate) => void;
  /** A chapter was saved while the client was away: fetch its text (GET /api/books/:id). */
  onChapterSaved?: (bookId: string, chapter: number) => void;
  /** Ask for `delta=merge-patch` (states after a book's first as patches, applied here); true by default. */
  delta?: boolean;
  /** States already shown (another tab's, a previous connection's): the stream resumes after them. */
  resumeFrom?: Iterable<BookProgress>;
}

export interface Watching {
  readonly connection: ConnectionState;
  /** Polling because a proxy buffers the stream (the open stream brought nothing for two heartbeat periods). */
  readonly buffered: boolean;
  /** The newest state shown per book. */
  readonly latest: ReadonlyMap<string, BookProgress>;
  close(): void;
}

const DEFAULTS = { pollIntervalMs: 3_000, sseFailuresBeforePolling: 3, sseRetryMs: 30_000, heartbeatMs: 15_000 };
const MAX_RECONNECT_MS = 15_000;

/** Jittered exponential backoff: 0.5-1 x min(500 ms x 2^n, 15 s). */
export function reconnectDelay(failures: number): number {
  return jitteredBackoff(failures, 500, MAX_RECONNECT_MS);
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
  for (const state of options.resumeFrom ?? []) if (ids === null || ids.includes(state.bookId)) latest.set(state.bookId, state);
  const live = options.text ? new LiveText(options.onText ?? (() => {}), options.onChapterSaved) : null;

  let connection: ConnectionState = 'connecting';
  let source: EventSourceLike | null = null;
  let sseFailures = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let pollTimer: ReturnType<typeof setTimeout> | null = null;
  let closed = false;
  /** A proxy held an open stream back: polling goes on until a stream brings something again. */
  let buffered = false;
  let watchdog: ReturnType<typeof setTimeout> | null = null;

  const setConnection = (next: ConnectionState) => {
    if (connection === next) return;
    connection = next;
    options.onConnection?.(next, { buffered });
  };

  const finished = () => ids !== null && ids.every((id) => {
    const state = latest.get(id);
    return state !== undefined && isTerminal(state.status);
  });

  const accept = (raw: unknown) => {
    const state = parseBookProgress(raw);
    if (state === null) return;
    if (ids !== null && !ids.includes(state.bookId)) return;
    const shown = latest.get(state.bookId);
    if (shown && state.version <= shown.version) return;
    latest.set(state.bookId, state);
    onProgress(state);
    if (finished()) stop();
  };

  /** Set when the server refused the token: the next one asked for must be fresh. */
  let refresh = false;
  const token = async (): Promise<string | undefined> => {
    if (!options.getToken) return options.token;
    const context = { refresh };
    refresh = false;
    return options.getToken(context);
  };

  /** The stream's URL: resuming from the versions shown, so a reconnect has no gap and no duplicate. */
  const streamUrl = (accessToken: string | undefined) => {
    const query: string[] = [];
    let path = `/api/ai/stream`;
    query.push('heartbeats=1');
    if (ids !== null && ids.length === 1) path = `/api/ai/progress/${encodeURIComponent(ids[0] as string)}/stream`;
    else if (ids !== null) query.push(`books=${ids.map(encodeURIComponent).join(',')}`);
    const known = ids?.map((id) => latest.get(id)?.version ?? 0) ?? [];
    if (live) query.push('text=1');
    if (options.delta !== false) query.push('delta=merge-patch');
    const textPart = live && ids !== null ? live.resumePart(ids) : '';
    const withText = textPart !== '' && textPart.split('.').some((p) => p !== '-');
    if (withText) query.push(`lastEventId=${encodeURIComponent(`${known.join('.')};${textPart}`)}`);
    else if (known.some((v) => v > 0)) query.push(`lastEventId=${known.join('.')}`);
    if (accessToken) query.push(`access_token=${encodeURIComponent(accessToken)}`);
    return `${base}${path}${query.length > 0 ? `?${query.join('&')}` : ''}`;
  };

  const connectSse = async () => {
    if (closed || !EventSourceClass) return;
    let url: string;
    try {
      url = streamUrl(await token());
    } catch {
      // No token to be had now: try again later, as after a failed connection.
      schedule(reconnectDelay(++sseFailures), () => void connectSse());
      return;
    }
    if (closed) return;
    const es = options.withCredentials ? new EventSourceClass(url, { withCredentials: true }) : new EventSourceClass(url);
    source = es;
    let heartbeatMs = settings.heartbeatMs;
    /** Something arrived: the stream flows (again, after a buffering proxy was suspected). */
    const arm = () => {
      if (watchdog) clearTimeout(watchdog);
      watchdog = setTimeout(heldBack, 2 * heartbeatMs);
    };
    const alive = () => {
      if (source !== es) return;
      arm();
      if (buffered) {
        buffered = false;
        sseFailures = 0;
        stopPolling();
        setConnection('live');
      }
    };
    const heldBack = () => {
      watchdog = null;
      if (source !== es || closed) return;
      es.close();
      source = null;
      buffered = true;
      startPolling();
      setConnection('polling');
      schedule(settings.sseRetryMs, () => void connectSse());
    };
    arm(); // nor may it hang unopened: the server answers at once
    es.addEventListener('heartbeat', (event) => {
      try {
        const period = (JSON.parse(event.data) as { heartbeatMs?: unknown }).heartbeatMs;
        if (typeof period === 'number' && period > 0) heartbeatMs = period;
      } catch {
        // Keep the period we had.
      }
      alive();
    });
    // The token expired on the open stream: reconnect at once with a fresh one, where it left off.
    es.addEventListener('auth', () => {
      refresh = true;
      es.close();
      if (source === es) source = null;
      if (!closed) void connectSse();
    });
    // What this connection sent, the base of its patches: a new connection starts each book whole.
    const patched = new PatchedStates();
    es.addEventListener('progress', (event) => {
      alive();
      try {
        accept(patched.whole(JSON.parse(event.data)));
      } catch {
        // A frame that is not JSON is not ours: ignore it.
      }
    });
    es.addEventListener('patch', (event) => {
      alive();
      let state: unknown;
      try {
        state = patched.patch(JSON.parse(event.data));
      } catch {
        return;
      }
      if (state !== undefined) return accept(state);
      // Nothing to patch (not expected): reconnect, which starts whole from the versions shown.
      if (source !== es) return;
      es.close();
      source = null;
      void connectSse();
    });
    if (live) {
      es.addEventListener('text', (event) => {
        alive();
        let frame: Parameters<LiveText['apply']>[0];
        try {
          frame = JSON.parse(event.data) as typeof frame;
        } catch {
          return;
        }
        // A gap (not expected): resume from what we have, which the server then sends exactly.
        if (!live.apply(frame) && source === es) {
          es.close();
          source = null;
          void connectSse();
        }
      });
      es.addEventListener('chapter', (event) => {
        alive();
        try {
          const saved = JSON.parse(event.data) as { bookId: string; chapter: number };
          live.chapterSaved(saved.bookId, saved.chapter);
        } catch {
          // Not ours.
        }
      });
    }
    let opened = false;
    es.onopen = () => {
      opened = true;
      arm();
      if (buffered) return; // live once something arrives
      sseFailures = 0;
      stopPolling();
      setConnection('live');
    };
    es.onerror = () => {
      if (watchdog) clearTimeout(watchdog);
      watchdog = null;
      // Refused before it opened: EventSource hides the status, and a 401 looks the same, so the
      // next token asked for is a fresh one.
      if (!opened) refresh = true;
      // We manage reconnects ourselves (backoff, fallback), not the browser's fixed retry.
      es.close();
      if (source === es) source = null;
      if (closed || finished()) return stop();
      sseFailures++;
      if (sseFailures >= settings.sseFailuresBeforePolling) {
        startPolling();
        schedule(settings.sseRetryMs, () => void connectSse());
      } else {
        if (connection !== 'polling') setConnection('connecting');
        schedule(reconnectDelay(sseFailures), () => void connectSse());
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
    let auth: Record<string, string> = {};
    try {
      const accessToken = await token();
      if (accessToken) auth = { Authorization: `Bearer ${accessToken}` };
    } catch {
      // Polls without one: the server says 401, and the next poll asks again.
    }
    const targets = ids === null ? [null] : ids.filter((id) => !isTerminal(latest.get(id)?.status ?? 'PLANNING'));
    let answered = false;
    await Promise.all(
      targets.map(async (id) => {
        try {
          if (id === null) {
            const res = await doFetch(`${base}/api/books`, { headers: auth, cache: 'no-store', credentials });
            answered = true;
            if (!res.ok) return;
            const body = (await res.json()) as { data?: Array<{ progress?: unknown }> };
            for (const book of body.data ?? []) if (book.progress) accept(book.progress);
            return;
          }
          const shown = latest.get(id);
          const headers: Record<string, string> = shown ? { ...auth, 'If-None-Match': `"${shown.version}"` } : auth;
          const res = await doFetch(`${base}/api/ai/progress/${encodeURIComponent(id)}`, { headers, cache: 'no-store', credentials });
          answered = true;
          if (res.status === 401) refresh = true;
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
    if (watchdog) clearTimeout(watchdog);
    stopPolling();
    setConnection('closed');
  };

  if (EventSourceClass) void connectSse();
  else startPolling();

  return {
    get connection() {
      return connection;
    },
    get buffered() {
      return buffered;
    },
    latest,
    close: stop,
  };
}
