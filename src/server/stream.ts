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

/**
 * One SSE response watching one book. Writes straight to the Node response: a frame built once
 * per version is shared by every watcher, and a client whose socket is not draining keeps only
 * the newest pending update (latest state wins, a terminal one is never replaced).
 */
export class ProgressStream implements Watcher {
  readonly #res: ServerResponse;
  readonly #onEnd: () => void;
  #sentVersion: number;
  #pending: Update | null = null;
  #open = false;
  #ended = false;

  constructor(res: ServerResponse, lastEventId: number, onEnd: () => void) {
    this.#res = res;
    this.#sentVersion = lastEventId;
    this.#onEnd = onEnd;
    // 'close' fires once for every exit: client abort, socket error, or our own end().
    res.once('close', () => this.#finish());
  }

  get ended(): boolean {
    return this.#ended || this.#res.destroyed;
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
    if (this.#ended || update.state.version <= this.#sentVersion) return;
    if (this.#pending && isTerminal(this.#pending.state.status)) return;
    if (this.#pending === null || update.state.version > this.#pending.state.version) this.#pending = update;
    if (this.#open && !this.#res.writableNeedDrain) this.#flush();
  }

  heartbeat(): void {
    if (this.#open && !this.#ended && !this.#res.writableNeedDrain) this.#res.write(HEARTBEAT);
  }

  /** Closes the stream, first telling the client when to reconnect. */
  close(retryMs?: number): void {
    if (this.#ended) return;
    if (this.#open && retryMs !== undefined) this.#res.write(formatSseEvent({ retry: retryMs }));
    this.#res.end();
    this.#finish();
  }

  #flush(): void {
    const update = this.#pending;
    if (update === null || this.#ended) return;
    this.#pending = null;
    this.#sentVersion = update.state.version;
    const drained = this.#res.write(update.frame);
    if (isTerminal(update.state.status)) {
      this.close();
      return;
    }
    if (!drained) this.#res.once('drain', () => this.#flush());
  }

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#pending = null;
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
