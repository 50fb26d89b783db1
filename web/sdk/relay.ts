import { watch } from '../client.js';
import type { ConnectionState, WatchOptions, Watching } from '../client.js';
import type { BookProgress } from './guard.js';

/** What a tab tells the tab-shared connection. `books: null` is every book. */
export type TabMessage =
  | { t: 'config'; options: SharedOptions }
  | { t: 'watch'; tab: string; books: readonly string[] | null }
  | { t: 'leave'; tab: string }
  | { t: 'token'; n: number; value?: string; error?: string };
/** What the tab-shared connection tells the tabs. */
export type HubMessage =
  | { t: 'state'; state: BookProgress }
  | { t: 'connection'; connection: ConnectionState; buffered: boolean }
  | { t: 'token?'; n: number; refresh: boolean }
  | { t: 'hello' };

/** The options a tab hands the shared connection: what can cross postMessage. */
export type SharedOptions = Pick<WatchOptions, 'baseUrl' | 'withCredentials' | 'pollIntervalMs' | 'sseFailuresBeforePolling' | 'sseRetryMs' | 'token' | 'heartbeatMs'> & { hasGetToken?: boolean };

/** Tabs joining within this window share one reconnect (eight tabs opening at once: one stream). */
const SETTLE_MS = 30;

/**
 * The one server connection of all tabs (run by the shared worker or the leader tab): it watches
 * the union of the tabs' books, reopening (resumed, never from scratch) when the union changes,
 * and relays every state and connection change. It keeps every state seen, so a tab that joins
 * gets its books' states at once and a new connection resumes where the last one stopped.
 */
export class Relay {
  readonly #tabs = new Map<string, readonly string[] | null>();
  readonly #known: Map<string, BookProgress>;
  readonly #options: WatchOptions;
  readonly #send: (message: HubMessage, tab?: string) => void;
  #connection: ConnectionState = 'connecting';
  #buffered = false;
  #watching: Watching | null = null;
  #key = '';
  #generation = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;

  constructor(options: WatchOptions, send: (message: HubMessage, tab?: string) => void, known: Iterable<BookProgress> = []) {
    this.#options = options;
    this.#send = send;
    this.#known = new Map([...known].map((s) => [s.bookId, s]));
  }

  get tabs(): number {
    return this.#tabs.size;
  }

  join(tab: string, books: readonly string[] | null): void {
    this.#tabs.set(tab, books);
    for (const state of this.#known.values()) if (books === null || books.includes(state.bookId)) this.#send({ t: 'state', state }, tab);
    this.#send({ t: 'connection', connection: this.#connection, buffered: this.#buffered }, tab);
    this.#plan();
  }

  leave(tab: string): void {
    if (this.#tabs.delete(tab)) this.#plan();
  }

  close(): void {
    this.#generation++;
    if (this.#timer) clearTimeout(this.#timer);
    this.#watching?.close();
    this.#watching = null;
  }

  #plan(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#connect(), SETTLE_MS);
  }

  #connect(): void {
    this.#timer = null;
    const lists = [...this.#tabs.values()];
    const union = lists.includes(null) ? null : [...new Set(lists.flatMap((b) => b ?? []))].sort();
    const key = union === null ? '*' : union.join(',');
    if (key === this.#key) return;
    this.#key = key;
    const generation = ++this.#generation;
    this.#watching?.close();
    this.#watching = null;
    if (union !== null && union.length === 0) return;
    this.#watching = watch(
      union ?? 'all',
      (state) => {
        this.#known.set(state.bookId, state);
        this.#send({ t: 'state', state });
      },
      {
        ...this.#options,
        resumeFrom: [...this.#known.values()],
        onConnection: (connection, { buffered }) => {
          if (generation !== this.#generation) return;
          this.#connection = connection;
          this.#buffered = buffered;
          this.#send({ t: 'connection', connection, buffered });
        },
      },
    );
  }
}
