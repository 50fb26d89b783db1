import type { ServerResponse } from 'node:http';
import { isTerminal } from '../progress/schema.js';
import type { Update, Watcher } from './hub.js';
import { formatSseComment, formatSseEvent } from './sse.js';

export const SSE_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  Connection: 'keep-alive',
  'X-Accel-Buffering': 'no',
} as const;

const HEARTBEAT = formatSseComment('heartbeat');

/** Which books a stream carries: a list (ends when all are finished), or every book. */
export type Watched = readonly string[] | 'all';

/**
 * One SSE response carrying the progress of one or more books. Writes straight to the Node
 * response. A client whose socket is not draining keeps only the newest pending update per
 * book (latest state wins; a pending terminal state is never replaced), so a slow client
 * costs at most one state per book, whatever the update rate.
 *
 * Event ids make resuming exact: for one book the id is its version (the frame built once per
 * version is shared by every watcher); for a list it is the versions in list order joined by
 * '.', e.g. `12.7.0`. The every-book stream has no id: a reconnect gets the latest states again.
 */
export class ProgressStream implements Watcher {
  readonly #res: ServerResponse;
  readonly #watched: Watched;
  readonly #sent: Map<string, number>;
  readonly #finished = new Set<string>();
  readonly #pending = new Map<string, Update>();
  readonly #onEnd: () => void;
  #open = false;
  #ended = false;
  #waitingForDrain = false;

  /** `known`: versions the client already has, from Last-Event-ID. */
  constructor(res: ServerResponse, watched: Watched, known: ReadonlyMap<string, number>, onEnd: () => void) {
    this.#res = res;
    this.#watched = watched;
    this.#sent = new Map(known);
    this.#onEnd = onEnd;
    // 'close' fires once for every exit: client abort, socket error, or our own end().
    res.once('close', () => this.#finish());
  }

  get ended(): boolean {
    return this.#ended || this.#res.destroyed;
  }

  /** Bytes written but not yet handed to the socket: what a slow client costs this process. */
  get bufferedBytes(): number {
    return this.#res.writableLength;
  }

  /** Sends the headers and the retry hint, then whatever arrived meanwhile. */
  open(retryMs: number): void {
    if (this.ended) return;
    this.#res.writeHead(200, SSE_HEADERS);
    this.#res.write(formatSseEvent({ retry: retryMs }));
    this.#open = true;
    this.#flush();
  }

  deliver(update: Update): void {
    const { bookId, version } = update.state;
    if (this.#ended || version <= (this.#sent.get(bookId) ?? 0)) return;
    const pending = this.#pending.get(bookId);
    if (pending && (isTerminal(pending.state.status) || pending.state.version >= version)) return;
    this.#pending.set(bookId, update);
    if (this.#open && !this.#waitingForDrain) this.#flush();
  }

  heartbeat(): void {
    if (this.#open && !this.#ended && !this.#waitingForDrain) this.#res.write(HEARTBEAT);
  }

  /** Closes the stream, first telling the client when to reconnect. */
  close(retryMs?: number): void {
    if (this.#ended) return;
    if (this.#open && retryMs !== undefined) this.#res.write(formatSseEvent({ retry: retryMs }));
    this.#res.end();
    this.#finish();
  }

  #flush(): void {
    for (const [bookId, update] of this.#pending) {
      if (this.#ended) return;
      this.#pending.delete(bookId);
      this.#sent.set(bookId, update.state.version);
      if (isTerminal(update.state.status)) this.#finished.add(bookId);
      if (!this.#res.write(this.#frame(update))) {
        this.#waitingForDrain = true;
        this.#res.once('drain', () => {
          this.#waitingForDrain = false;
          this.#flush();
        });
        return;
      }
    }
    if (this.#watched !== 'all' && this.#finished.size === this.#watched.length) this.close();
  }

  #frame(update: Update): string {
    if (this.#watched === 'all') return formatSseEvent({ event: 'progress', data: update.json });
    if (this.#watched.length === 1) return update.frame;
    const id = this.#watched.map((bookId) => this.#sent.get(bookId) ?? 0).join('.');
    return formatSseEvent({ event: 'progress', id, data: update.json });
  }

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#pending.clear();
    this.#onEnd();
  }
}

/** Every open stream of the process: one shared heartbeat timer, and shutdown. */
export class StreamRegistry {
  readonly #streams = new Set<ProgressStream>();
  readonly #timer: NodeJS.Timeout;

  constructor(heartbeatMs: number) {
    this.#timer = setInterval(() => {
      for (const stream of this.#streams) stream.heartbeat();
    }, heartbeatMs);
    this.#timer.unref();
  }

  get size(): number {
    return this.#streams.size;
  }

  bufferedBytes(): number {
    let total = 0;
    for (const stream of this.#streams) total += stream.bufferedBytes;
    return total;
  }

  add(stream: ProgressStream): void {
    this.#streams.add(stream);
  }

  delete(stream: ProgressStream): void {
    this.#streams.delete(stream);
  }

  /** Ends every stream with a retry hint, so clients reconnect to another instance. */
  closeAll(retryMs: number): void {
    for (const stream of [...this.#streams]) stream.close(retryMs);
    this.#streams.clear();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
