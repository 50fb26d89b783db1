import { setTimeout as delay } from 'node:timers/promises';
import { EventSource } from 'eventsource';
import { WebSocket } from 'ws';
import type { HistoryWriter, Seen } from './history.js';
import { TERMINAL } from './history.js';
import { seen, timed } from './load.js';
import type { Instance } from './topology.js';

/** What every kind of watcher keeps: the last state it received of each book, and whether it is live. */
export interface Watcher {
  readonly name: string;
  readonly books: readonly string[];
  readonly last: Map<string, Seen>;
  /** Open now, or ended because it holds every book's terminal state. */
  connected(): boolean;
  close(): void;
}

abstract class Recording {
  readonly last = new Map<string, Seen>();
  session = 0;
  closed = false;

  constructor(
    readonly name: string,
    readonly instance: Instance,
    readonly history: HistoryWriter,
  ) {}

  receive(state: { bookId: string; version: number; status: string; message?: string }): void {
    const s = seen(state);
    this.history.record({ type: 'event', watcher: this.name, session: this.session, server: this.instance.index, bookId: state.bookId, state: s });
    const held = this.last.get(state.bookId);
    if (!held || s.version >= held.version) this.last.set(state.bookId, s);
  }

  allTerminal(books: readonly string[]): boolean {
    return books.every((id) => TERMINAL.has(this.last.get(id)?.status ?? ''));
  }
}

/**
 * An EventSource on a per-book or multiplexed stream. It reconnects by itself after a network
 * error; after a refusal (a 503, a 404) it is opened again a second later with the last event
 * id it holds, as the browser client does, until it holds every book's terminal state.
 */
export class SseWatcher extends Recording implements Watcher {
  readonly books: readonly string[];
  readonly #path: string;
  #source: EventSource | null = null;
  #lastEventId = '';

  constructor(name: string, instance: Instance, history: HistoryWriter, books: readonly string[]) {
    super(name, instance, history);
    this.books = books;
    this.#path = books.length === 1 ? `/api/ai/progress/${books[0]}/stream` : `/api/ai/stream?books=${books.join(',')}`;
    this.#open();
  }

  #open(): void {
    if (this.closed) return;
    const lastEventId = this.#lastEventId;
    const source = new EventSource(`${this.instance.url}${this.#path}`, {
      fetch: (input, init) => fetch(input, lastEventId === '' ? init : { ...init, headers: { ...(init?.headers as Record<string, string>), 'last-event-id': lastEventId } }),
    });
    this.#source = source;
    source.addEventListener('open', () => this.session++);
    source.addEventListener('progress', (event) => {
      this.#lastEventId = event.lastEventId;
      this.receive(JSON.parse(event.data) as { bookId: string; version: number; status: string; message: string });
    });
    source.addEventListener('error', (event) => {
      const { code, message } = event as { code?: number; message?: string };
      this.history.record({ type: 'watch-error', watcher: this.name, server: this.instance.index, ...(code ? { code } : {}), message: message ?? 'error' });
      if (source.readyState !== EventSource.CLOSED || this.closed || this.allTerminal(this.books)) return;
      void delay(1_000).then(() => this.#source === source && this.#open());
    });
  }

  connected(): boolean {
    return this.#source?.readyState === EventSource.OPEN || this.allTerminal(this.books);
  }

  close(): void {
    this.closed = true;
    this.#source?.close();
  }
}

/** One WebSocket per server, following books as they appear; reconnects a second after a close, telling the versions it holds. */
export class WsWatcher extends Recording implements Watcher {
  readonly books: string[] = [];
  #ws: WebSocket | null = null;

  constructor(name: string, instance: Instance, history: HistoryWriter) {
    super(name, instance, history);
    this.#open();
  }

  follow(bookId: string): void {
    this.books.push(bookId);
    if (this.#ws?.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify({ type: 'subscribe', books: [bookId] }));
  }

  #open(): void {
    if (this.closed) return;
    const ws = new WebSocket(`${this.instance.url.replace('http', 'ws')}/api/ai/ws`);
    this.#ws = ws;
    ws.on('open', () => {
      this.session++;
      if (this.books.length === 0) return;
      const versions = Object.fromEntries([...this.last].map(([id, s]) => [id, s.version]));
      ws.send(JSON.stringify({ type: 'subscribe', books: this.books, versions }));
    });
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString()) as { type: string; data?: { bookId: string; version: number; status: string; message: string }; error?: { code: string; message: string } };
      if (message.type === 'progress' && message.data) this.receive(message.data);
      else if (message.type === 'error') this.history.record({ type: 'watch-error', watcher: this.name, server: this.instance.index, message: `${message.error?.code}: ${message.error?.message}` });
    });
    ws.on('error', (error) => this.history.record({ type: 'watch-error', watcher: this.name, server: this.instance.index, message: error.message }));
    ws.on('close', () => {
      if (!this.closed && this.#ws === ws) void delay(1_000).then(() => this.#ws === ws && this.#open());
    });
  }

  connected(): boolean {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  close(): void {
    this.closed = true;
    this.#ws?.terminate();
  }
}

/** A legacy poller of one book: GET every `intervalMs` with If-None-Match, as the old UI did every 3 s. */
export class Poller implements Watcher {
  readonly books: readonly string[];
  readonly last = new Map<string, Seen>();
  #etag = '';
  #lastStatus: number | null = null;
  #running = true;
  readonly #loop: Promise<void>;

  constructor(
    readonly name: string,
    readonly instance: Instance,
    readonly history: HistoryWriter,
    bookId: string,
    intervalMs: number,
    clientMs: number,
  ) {
    this.books = [bookId];
    this.#loop = this.#run(intervalMs, clientMs);
  }

  async #run(intervalMs: number, clientMs: number): Promise<void> {
    while (this.#running) {
      await this.poll(clientMs);
      await delay(intervalMs);
    }
  }

  /** One poll, recorded. */
  async poll(clientMs: number): Promise<void> {
    const bookId = this.books[0]!;
    const headers: Record<string, string> = this.#etag ? { 'if-none-match': this.#etag } : {};
    const { answer, body } = await timed(this.instance, `/api/ai/progress/${bookId}`, { headers }, clientMs);
    this.#lastStatus = answer.status;
    const data = answer.status === 200 ? (body as { data?: { version: number; status: string; message: string } }).data : undefined;
    if (data) {
      this.#etag = `"${data.version}"`;
      const s = seen(data);
      const held = this.last.get(bookId);
      if (!held || s.version >= held.version) this.last.set(bookId, s);
    }
    this.history.record({ type: 'poll', poller: this.name, bookId, ...answer, ...(data ? { state: seen(data) } : {}) });
  }

  connected(): boolean {
    return this.#lastStatus === 200 || this.#lastStatus === 304;
  }

  /** Stops polling once the poll in flight ends. */
  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  close(): void {
    this.#running = false;
  }
}
