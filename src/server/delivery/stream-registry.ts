import type { ProgressStream } from './sse-stream.js';

/** What kind of SSE stream: one book's, several books' (`?books=`), or every book's. */
export type StreamKind = 'sse' | 'multiplexed' | 'every-book';

/** What the operator view shows of a stream: its kind and the caller's tenant (null: none, open mode). */
export interface StreamLabel {
  readonly kind: StreamKind;
  readonly tenant: string | null;
}

const UNLABELLED: StreamLabel = Object.freeze({ kind: 'sse', tenant: null });

/**
 * How often the heartbeat timer ticks. Each tick visits one slice of the streams, so a sweep of
 * 10,000 sockets (about 200 ms of writes at once) becomes many short ones spread over the period.
 */
const HEARTBEAT_TICK_MS = 250;

/** Part of the heartbeat period in which each stream is visited; the rest is the quiet window. */
const VISIT_SHARE = 0.8;

/**
 * Every open stream of the process: one shared heartbeat timer, and shutdown. Streams are kept
 * in slices, one slice visited per tick, so each stream is visited every 0.8 × `heartbeatMs`.
 * A visit writes a heartbeat unless the stream wrote an event in the last 0.2 × `heartbeatMs`:
 * either way no stream stays silent for longer than `heartbeatMs`, and a stream that carries
 * events often costs no heartbeat writes at all.
 */
export class StreamRegistry {
  readonly #slices: Array<Set<ProgressStream>>;
  readonly #sliceOf = new Map<ProgressStream, Set<ProgressStream>>();
  readonly #labels = new Map<ProgressStream, StreamLabel>();
  readonly #timer: NodeJS.Timeout;
  #tick = 0;
  /** No open stream stays silent for longer. */
  readonly heartbeatMs: number;

  constructor(heartbeatMs: number) {
    this.heartbeatMs = heartbeatMs;
    const visitMs = heartbeatMs * VISIT_SHARE;
    const slices = Math.max(1, Math.floor(visitMs / HEARTBEAT_TICK_MS));
    const tickMs = Math.floor(visitMs / slices);
    const quietMs = heartbeatMs - tickMs * slices;
    this.#slices = Array.from({ length: slices }, () => new Set<ProgressStream>());
    this.#timer = setInterval(() => {
      const slice = this.#slices[this.#tick++ % slices] as Set<ProgressStream>;
      const quietSince = Date.now() - quietMs;
      for (const stream of slice) stream.heartbeat(quietSince);
    }, tickMs);
    this.#timer.unref();
  }

  get size(): number {
    return this.#sliceOf.size;
  }

  bufferedBytes(): number {
    let total = 0;
    for (const stream of this.#sliceOf.keys()) total += stream.bufferedBytes;
    return total;
  }

  /** The label of each open stream (for the operator view). */
  labels(): IterableIterator<StreamLabel> {
    return this.#labels.values();
  }

  add(stream: ProgressStream, label: StreamLabel = UNLABELLED): void {
    if (this.#sliceOf.has(stream)) return;
    this.#labels.set(stream, label);
    // The smallest slice: streams opened together are spread over the period.
    let slice = this.#slices[0] as Set<ProgressStream>;
    for (const s of this.#slices) if (s.size < slice.size) slice = s;
    slice.add(stream);
    this.#sliceOf.set(stream, slice);
  }

  delete(stream: ProgressStream): void {
    this.#sliceOf.get(stream)?.delete(stream);
    this.#sliceOf.delete(stream);
    this.#labels.delete(stream);
  }

  /** Ends every stream with a retry hint, so clients reconnect to another instance. */
  closeAll(retryMs: number): void {
    for (const stream of [...this.#sliceOf.keys()]) stream.close(retryMs);
    this.#sliceOf.clear();
    this.#labels.clear();
    for (const slice of this.#slices) slice.clear();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
