import type { ConnectionState } from '../client.js';
import type { FeedSink, WatchBooksOptions } from './books.js';
import type { BookProgress } from './guard.js';
import { Relay } from './relay.js';
import type { HubMessage, SharedOptions, TabMessage } from './relay.js';

/**
 * The tab's side of one connection per browser: a SharedWorker when the page names its script
 * and the browser has one, else a leader tab elected with the Web Locks API, relaying over a
 * BroadcastChannel. Each tab holds a lock of its own while open, so the worker or the leader
 * learns when it closes. Null when the browser has neither (the caller opens its own connection).
 */
export function sharedFeed(ids: readonly string[] | null, sink: FeedSink, options: WatchBooksOptions): { close(): void } | null {
  if (typeof navigator === 'undefined' || !navigator.locks) return null;
  const useWorker = options.share === true && options.sharedWorkerUrl !== undefined && typeof SharedWorker === 'function';
  if (!useWorker && typeof BroadcastChannel !== 'function') return null;

  const tab = crypto.randomUUID();
  const base = absoluteBase(options.baseUrl ?? '');
  const shared: SharedOptions = {
    baseUrl: base,
    withCredentials: options.withCredentials,
    pollIntervalMs: options.pollIntervalMs,
    sseFailuresBeforePolling: options.sseFailuresBeforePolling,
    sseRetryMs: options.sseRetryMs,
    heartbeatMs: options.heartbeatMs,
    token: options.token,
    hasGetToken: options.getToken !== undefined,
  };
  for (const key of Object.keys(shared) as Array<keyof SharedOptions>) if (shared[key] === undefined) delete shared[key];
  let closed = false;
  let releaseTab = () => {};
  const tabLock = new Promise<void>((granted) => {
    void navigator.locks.request(`booksai-progress-tab:${tab}`, () => {
      granted();
      return new Promise<void>((release) => (releaseTab = release));
    });
  });

  const answerToken = async (n: number, refresh: boolean, post: (m: TabMessage) => void) => {
    try {
      const value = options.getToken ? await options.getToken({ refresh }) : options.token;
      post(value === undefined ? { t: 'token', n, error: 'no token' } : { t: 'token', n, value });
    } catch (error) {
      sink.error(error instanceof Error ? error : new Error(String(error)));
      post({ t: 'token', n, error: String(error) });
    }
  };

  if (useWorker) {
    const worker = new SharedWorker(options.sharedWorkerUrl as string | URL, { type: 'module', name: `booksai-progress ${base}` });
    const port = worker.port;
    const post = (m: TabMessage) => port.postMessage(m);
    port.onmessage = (e: MessageEvent<HubMessage>) => {
      const m = e.data;
      if (m.t === 'state') sink.state(m.state);
      else if (m.t === 'connection') sink.connection(m.connection, 'shared-worker', m.buffered);
      else if (m.t === 'token?') void answerToken(m.n, m.refresh, post);
    };
    port.start();
    sink.connection('connecting', 'shared-worker', false);
    void tabLock.then(() => {
      if (closed) return;
      post({ t: 'config', options: shared });
      post({ t: 'watch', tab, books: ids });
    });
    return {
      close() {
        closed = true;
        post({ t: 'leave', tab });
        port.close();
        releaseTab();
      },
    };
  }

  const channel = new BroadcastChannel(`booksai-progress ${base}`);
  const known = new Map<string, BookProgress>();
  const stop = new AbortController();
  let relay: Relay | null = null;
  let connection: ConnectionState = 'connecting';
  let buffered = false;
  const announce = () => channel.postMessage({ t: 'watch', tab, books: ids } satisfies TabMessage);
  const hear = (m: HubMessage) => {
    if (m.t === 'state') {
      const had = known.get(m.state.bookId);
      if (!had || had.version < m.state.version) known.set(m.state.bookId, m.state);
      sink.state(m.state);
    } else if (m.t === 'connection') {
      connection = m.connection;
      buffered = m.buffered;
      sink.connection(connection, relay ? 'leader-tab' : 'follower-tab', buffered);
    } else if (m.t === 'hello' && !relay) announce();
  };
  channel.onmessage = (e: MessageEvent<TabMessage | HubMessage>) => {
    const m = e.data;
    if (m.t === 'state' || m.t === 'connection' || m.t === 'hello') return hear(m);
    if (!relay) return;
    if (m.t === 'watch') {
      relay.join(m.tab, m.books);
      const current = relay;
      void navigator.locks.request(`booksai-progress-tab:${m.tab}`, { signal: stop.signal }, () => current.leave(m.tab)).catch(() => {});
    } else if (m.t === 'leave') relay.leave(m.tab);
  };
  sink.connection('connecting', 'follower-tab', false);
  void tabLock.then(() => {
    if (closed) return;
    announce();
    // Queued behind the current leader: granted when it closes, and this tab takes over.
    void navigator.locks
      .request(`booksai-progress-leader ${base}`, { signal: stop.signal }, () => {
        if (closed) return;
        relay = new Relay({ ...options, baseUrl: base }, (m) => {
          channel.postMessage(m);
          hear(m);
        }, known.values());
        sink.connection(connection, 'leader-tab', buffered);
        relay.join(tab, ids);
        channel.postMessage({ t: 'hello' } satisfies HubMessage);
        return new Promise<void>((release) => stop.signal.addEventListener('abort', () => release()));
      })
      .catch(() => {});
  });
  return {
    close() {
      closed = true;
      channel.postMessage({ t: 'leave', tab } satisfies TabMessage);
      relay?.close();
      stop.abort();
      channel.close();
      releaseTab();
    },
  };
}

/** The server's base as an absolute URL, so the worker and every tab (whatever its path) agree on it. */
function absoluteBase(base: string): string {
  if (/^https?:\/\//.test(base)) return base.replace(/\/$/, '');
  if (base === '' || base.startsWith('/')) return `${location.origin}${base}`.replace(/\/$/, '');
  return new URL(base, document.baseURI).href.replace(/\/$/, '');
}
