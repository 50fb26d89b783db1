import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { BookQueue } from './book-queue.js';
import type { EncodedState } from './encoded-state.js';
import type { Watcher } from './hub.js';
import { RECENT_CACHE_MS } from './recent-books.js';
import { EncodedEvent, formatSseComment, formatSseEvent } from './sse.js';
import { formatCursor, frameData } from './text-feed.js';
import type { TextFeed, TextFrame } from './text-feed.js';

export const SSE_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'private, no-cache, no-transform',
  Connection: 'keep-alive',
  'X-Accel-Buffering': 'no',
} as const;

const HEARTBEAT = new EncodedEvent(formatSseComment('heartbeat'));
/**
 * The last event of a stream whose token expired. A named event of its own, not `error`:
 * EventSource reports network failures as `error` events too, and a client must tell them apart.
 */
const TOKEN_EXPIRED = new EncodedEvent(formatSseEvent({ event: 'auth', data: '{"code":"token_expired"}' }));
/** How soon a client reconnects after a gap in the every-book stream: past RECENT_CACHE_MS, for a fresh list. */
const GAP_RETRY_MS = RECENT_CACHE_MS + 500;

/** Which books a stream carries: a list (ends when all are finished), or every book. */
export type Watched = readonly string[] | 'all';

/**
 * One SSE response carrying the progress of one or more books. Once the headers are out, events
 * go straight to the socket, already framed (see EncodedEvent), one write each, at the end of
 * the batch of Redis messages they came in (see `#dueStreams`); the Node response would frame
 * every write again. Until then, and while a client's socket is not draining, a stream keeps
 * only the newest pending update per book (latest state wins; a pending terminal state is never
 * replaced), so a slow client costs at most one state per book, whatever the update rate.
 *
 * Event ids make resuming exact: for one book the id is its version (the frame built once per
 * version is shared by every watcher); for a list it is the versions in list order joined by
 * '.', e.g. `12.7.0`. The every-book stream has no id: a reconnect gets the latest states again.
 *
 * With `delta=merge-patch` a book's first event on the stream is its whole state and the next
 * ones are `patch` events against the state this stream sent before (see StatePatch), with the
 * same ids; a state a patch cannot carry well (terminal, a member set to null) goes whole.
 */
export class ProgressStream implements Watcher {
  readonly #res: ServerResponse;
  /** The client's connection, which this response may still be waiting for (pipelining). */
  readonly #connection: Socket;
  readonly #watched: Watched;
  readonly #books: BookQueue;
  /** For every-book streams of one tenant: which updates this client may receive. */
  readonly #admits: ((update: EncodedState) => boolean) | null;
  readonly #finished = new Set<string>();
  readonly #onEnd: () => void;
  /** Set once the headers are out and this response owns the connection. */
  #socket: Socket | null = null;
  /** Whether the body is chunked (HTTP/1.1), as Node chose when it wrote the headers. */
  #chunked = true;
  #open = false;
  #gapBeforeOpen = false;
  /** Queued in `due`, to be written at the end of the current batch of messages. */
  #due = false;
  #ended = false;
  #waitingForDrain = false;
  /** When the last event was written (ms since the epoch): a stream carrying events needs no heartbeat. */
  #lastEventAt = 0;
  /** Live text, for a stream opened with `?text=1` (null: progress only, at no cost). */
  #text: TextFeed | null = null;
  /** A comment, or with `?heartbeats=1` an event EventSource shows (see visibleHeartbeats). */
  #heartbeat = HEARTBEAT;
  #helloFirst = false;

  /**
   * `known`: versions the client already has, from Last-Event-ID. `admits`: which updates the
   * client may receive (null: all it watches; a list's books are checked before it opens).
   */
  constructor(
    res: ServerResponse,
    watched: Watched,
    known: ReadonlyMap<string, number>,
    admits: ((update: EncodedState) => boolean) | null,
    onEnd: () => void,
    delta = false,
  ) {
    this.#res = res;
    this.#watched = watched;
    this.#books = new BookQueue(known, delta);
    this.#admits = admits;
    this.#onEnd = onEnd;
    this.#connection = res.req.socket;
    // The response's 'close' comes with every exit of a response that holds the connection: client
    // abort, socket error, our own end(). A pipelined response still waiting for the connection
    // gets none when it closes, hence the connection's too.
    res.once('close', this.#onClose);
    this.#connection.once('close', this.#onClose);
  }

  get ended(): boolean {
    return this.#ended || this.#res.destroyed || this.#connection.destroyed;
  }

  /** Bytes written but not yet handed to the socket: what a slow client costs this process. */
  get bufferedBytes(): number {
    return this.#socket?.writableLength ?? 0;
  }

  /** Sends the headers and the retry hint, then whatever arrived meanwhile. */
  open(retryMs: number): void {
    if (this.ended) return;
    this.#res.writeHead(200, SSE_HEADERS);
    this.#res.flushHeaders();
    const socket = this.#res.socket;
    if (socket) this.#start(socket, retryMs);
    // Pipelined requests: an earlier response still holds the connection. Node writes our headers
    // right after handing it over ('socket' comes first), so the events wait one tick more.
    else this.#res.once('socket', (handedOver: Socket) => process.nextTick(() => this.#start(handedOver, retryMs)));
  }

  /**
   * Carries live text too: `event: text` frames, and every event's id then also says where the
   * client is in each book's text (`<progress id>;<chapter>:<section>:<attempt>:<offset>`).
   */
  attachText(feed: TextFeed): void {
    this.#text = feed;
  }

  /**
   * Heartbeats as `event: heartbeat` (data: the period), the first right after the headers: a
   * browser client, which cannot see comments, then notices a proxy that holds the stream back.
   */
  visibleHeartbeats(heartbeatMs: number): void {
    this.#heartbeat = new EncodedEvent(formatSseEvent({ event: 'heartbeat', data: `{"heartbeatMs":${heartbeatMs}}` }));
    this.#helloFirst = true;
  }

  /** Text frames waited their coalescing window: written now unless the socket is not draining. */
  textDue(): void {
    if (this.#open && !this.#ended && !this.#waitingForDrain) this.#flush();
  }

  deliver(update: EncodedState): void {
    if (this.#ended || (this.#admits !== null && !this.#admits(update)) || !this.#books.offer(update)) return;
    if (this.#open && !this.#waitingForDrain && !this.#due) {
      this.#due = true;
      if (ProgressStream.#dueStreams.push(this) === 1) process.nextTick(ProgressStream.#flushDue);
    }
  }

  /**
   * Streams with events to write. Events are written once the current batch of Redis messages is
   * handled, not one by one as they come: the writes to all sockets then follow each other, and
   * the kernel wakes each client process once per batch instead of once per event.
   */
  static #dueStreams: ProgressStream[] = [];

  static #flushDue(): void {
    const streams = ProgressStream.#dueStreams;
    ProgressStream.#dueStreams = [];
    for (const stream of streams) {
      stream.#due = false;
      if (stream.#waitingForDrain) continue;
      try {
        stream.#flush();
      } catch {
        // Not expected; but one stream's failure must not stop the others' writes (nor the process).
        stream.#res.destroy();
      }
    }
  }

  /** Keeps an idle connection open through proxies (see StreamRegistry); skipped when an event was written since `quietSince`. */
  heartbeat(quietSince: number): void {
    if (this.#lastEventAt >= quietSince) return;
    if (this.#open && !this.#ended && !this.#waitingForDrain) this.#write(this.#heartbeat);
  }

  /** States may have been missed: the client reconnects soon and gets the latest ones again. */
  gap(): void {
    // Still joining: ending now would answer a bare 200, which EventSource never retries. Once
    // open, with the states read meanwhile written, the stream closes with the retry hint.
    if (!this.#open) this.#gapBeforeOpen = true;
    else this.close(GAP_RETRY_MS);
  }

  /** The token ran out: tells the client (which gets a fresh one and resumes), then ends. */
  expire(): void {
    if (this.#ended) return;
    if (this.#open) this.#write(TOKEN_EXPIRED);
    this.#res.end();
    this.#finish();
  }

  /** Closes the stream, first telling the client when to reconnect. */
  close(retryMs?: number): void {
    if (this.#ended) return;
    if (this.#open && retryMs !== undefined) this.#write(new EncodedEvent(formatSseEvent({ retry: retryMs })));
    this.#res.end();
    this.#finish();
  }

  #start(socket: Socket, retryMs: number): void {
    if (this.ended) return;
    this.#socket = socket;
    this.#chunked = this.#res.chunkedEncoding;
    this.#write(new EncodedEvent(formatSseEvent({ retry: retryMs })));
    if (this.#helloFirst) this.#write(this.#heartbeat);
    this.#open = true;
    this.#flush();
    if (this.#gapBeforeOpen) setImmediate(() => this.close(GAP_RETRY_MS));
  }

  /** False when the socket's buffer is full (wait for 'drain') or the stream ended. */
  #write(event: EncodedEvent): boolean {
    const socket = this.#socket as Socket;
    // Node ends the socket itself when the client half-closes; a write after that would be an error.
    if (!socket.writable) {
      this.#finish();
      return false;
    }
    return socket.write(this.#chunked ? event.chunk : event.plain);
  }

  #flush(): void {
    // Text first: a book's last words come before its final state, which may end the stream.
    if (this.#text !== null && !this.#flushText()) return;
    for (let update = this.#books.take(); update !== null; update = this.#books.take()) {
      if (this.#ended) return;
      if (update.terminal) {
        // The every-book stream would otherwise remember every book it ever carried.
        if (this.#watched === 'all') {
          this.#books.forget(update.bookId);
          this.#text?.remove(update.bookId);
        }
        else this.#finished.add(update.bookId);
      }
      this.#lastEventAt = Date.now();
      if (!this.#write(this.#frame(update, this.#books.base))) {
        this.#awaitDrain();
        return;
      }
    }
    if (this.#watched !== 'all' && this.#finished.size === this.#watched.length) this.close();
  }

  /** Writes the text frames waiting; false when the socket is full (or the stream ended). */
  #flushText(): boolean {
    const feed = this.#text as TextFeed;
    for (let frame = feed.take(); frame !== null; frame = feed.take()) {
      if (this.#ended) return false;
      this.#lastEventAt = Date.now();
      if (!this.#write(this.#textEvent(frame))) {
        this.#awaitDrain();
        return false;
      }
    }
    return true;
  }

  #awaitDrain(): void {
    if (this.#ended) return;
    this.#waitingForDrain = true;
    (this.#socket as Socket).once('drain', () => {
      this.#waitingForDrain = false;
      this.#flush();
    });
  }

  #textEvent(frame: TextFrame): EncodedEvent {
    const id = this.#resumeId();
    return new EncodedEvent(formatSseEvent({ event: frame.kind, ...(id === undefined ? {} : { id }), data: JSON.stringify(frameData(frame)) }));
  }

  /** The id that resumes this stream exactly: versions joined by '.', then (with text) the text positions. */
  #resumeId(): string | undefined {
    if (this.#watched === 'all') return undefined;
    const versions = this.#watched.map((bookId) => this.#books.sent(bookId)).join('.');
    const text = this.#text;
    if (text === null) return versions;
    return `${versions};${this.#watched.map((bookId) => formatCursor(text.position(bookId))).join('.')}`;
  }

  /** `base`: what the client had of the book, for a patch (null: the state goes whole). */
  #frame(update: EncodedState, base: EncodedState | null): EncodedEvent {
    const patch = base === null ? null : update.patchFrom(base);
    if (patch !== null) {
      if (this.#watched === 'all') return patch.frameWithoutId;
      if (this.#watched.length === 1 && this.#text === null) return patch.frame;
      return EncodedEvent.named('patch', this.#watched.length === 1 ? (patch.json as string) : patch.jsonWithBookId, this.#resumeId());
    }
    if (this.#watched === 'all') return update.frameWithoutId;
    if (this.#watched.length === 1 && this.#text === null) return update.frame;
    return EncodedEvent.progress(update.json, this.#resumeId());
  }

  readonly #onClose = () => this.#finish();

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#books.clearPending();
    this.#text?.close();
    // A keep-alive connection outlives its streams: leave nothing attached to it.
    this.#connection.off('close', this.#onClose);
    this.#onEnd();
  }
}
