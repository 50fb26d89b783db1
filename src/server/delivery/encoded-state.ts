import { isTerminal } from '../../progress/schema.js';
import type { BookProgress } from '../../progress/schema.js';
import { EncodedEvent } from './sse.js';

/**
 * One committed version of a book's state, encoded for every watcher of the process once per
 * version (not to be confused with ProgressUpdate, a partial patch a publisher sends). It lives
 * while it is being written (topics keep their newest state without it, see TopicState), or
 * while a slow client has it pending.
 *
 * Its encodings are kept for the tick they were built in, and shared by every client written in
 * it: a batch of Redis messages is written to all streams in one tick (see ProgressStream). Then
 * they are dropped, so a state a slow client still has pending holds its JSON, not Buffers (a
 * frame is a slice of Node's 8 KiB buffer pool and would keep all of it).
 */
export class EncodedState {
  readonly bookId: string;
  readonly version: number;
  /** COMPLETE or ERROR: the book's last state. */
  readonly terminal: boolean;
  readonly json: string;
  /** The book's tenant (undefined: a book without one): who may receive it. */
  readonly tenant: string | undefined;
  #frame: EncodedEvent | null = null;
  #frameWithoutId: EncodedEvent | null = null;
  #wsMessage: Buffer | null = null;
  #encoded = false;

  /** States with encodings built in the current tick. */
  static #encodedThisTick: EncodedState[] = [];

  constructor(bookId: string, version: number, terminal: boolean, json: string, tenant: string | undefined) {
    this.bookId = bookId;
    this.version = version;
    this.terminal = terminal;
    this.json = json;
    this.tenant = tenant;
  }

  /** `json`: the state as JSON, when the caller already has it. */
  static of(state: BookProgress, json = JSON.stringify(state)): EncodedState {
    return new EncodedState(state.bookId, state.version, isTerminal(state.status), json, state.tenant);
  }

  /** The state, parsed again on each call: only the database fallback needs all of it. */
  get state(): BookProgress {
    return JSON.parse(this.json) as BookProgress;
  }

  /** A complete `progress` event with the version as id. */
  get frame(): EncodedEvent {
    if (this.#frame === null) {
      this.#frame = EncodedEvent.progress(this.json, String(this.version));
      this.#keepForThisTick();
    }
    return this.#frame;
  }

  /** The same event without an id, for every-book streams. */
  get frameWithoutId(): EncodedEvent {
    if (this.#frameWithoutId === null) {
      this.#frameWithoutId = EncodedEvent.progress(this.json);
      this.#keepForThisTick();
    }
    return this.#frameWithoutId;
  }

  /** The WebSocket message, `{ type: 'progress', data: state }`. */
  get wsMessage(): Buffer {
    if (this.#wsMessage === null) {
      this.#wsMessage = Buffer.from(`{"type":"progress","data":${this.json}}`);
      this.#keepForThisTick();
    }
    return this.#wsMessage;
  }

  #keepForThisTick(): void {
    if (this.#encoded) return;
    this.#encoded = true;
    if (EncodedState.#encodedThisTick.push(this) === 1) process.nextTick(EncodedState.#dropEncodings);
  }

  static #dropEncodings(): void {
    const states = EncodedState.#encodedThisTick;
    EncodedState.#encodedThisTick = [];
    for (const state of states) {
      state.#frame = null;
      state.#frameWithoutId = null;
      state.#wsMessage = null;
      state.#encoded = false;
    }
  }
}
