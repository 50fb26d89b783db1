import { isTerminal } from '../../progress/schema.js';
import type { BookProgress } from '../../progress/schema.js';
import { mergePatchBetween } from './merge-patch.js';
import { EncodedEvent } from './sse.js';

/** Patches kept per state: bases other than the previous version are slow clients, few at a time. */
const PATCHES_KEPT = 4;

/**
 * A JSON Merge Patch from a base version to a state, for connections opened with
 * `delta=merge-patch`: built once per (book, version, base version), shared by every connection
 * that has that base. Its JSON stays with the state; its encodings, like the state's, are kept
 * for one tick.
 */
export class StatePatch {
  readonly baseVersion: number;
  /**
   * The patch (null: the state goes whole, see patchFrom). It leaves `bookId` out, which never
   * changes: a one-book stream and the WebSocket message name the book already.
   */
  readonly json: string | null;
  #jsonWithBookId: string | null = null;
  readonly #state: EncodedState;
  #frame: EncodedEvent | null = null;
  #frameWithoutId: EncodedEvent | null = null;
  #wsMessage: Buffer | null = null;

  constructor(state: EncodedState, baseVersion: number, json: string | null) {
    this.#state = state;
    this.baseVersion = baseVersion;
    this.json = json;
  }

  /** The patch naming its book first, for streams of several books. */
  get jsonWithBookId(): string {
    return (this.#jsonWithBookId ??= `{"bookId":${JSON.stringify(this.#state.bookId)},${(this.json as string).slice(1)}`);
  }

  /** A `patch` event with the version as id. */
  get frame(): EncodedEvent {
    this.#state.keepForThisTick();
    return (this.#frame ??= EncodedEvent.named('patch', this.json as string, String(this.#state.version)));
  }

  /** The event without an id and with `bookId`, for every-book streams. */
  get frameWithoutId(): EncodedEvent {
    this.#state.keepForThisTick();
    return (this.#frameWithoutId ??= EncodedEvent.named('patch', this.jsonWithBookId));
  }

  /** The WebSocket message, `{ type: 'patch', bookId, data: patch }`. */
  get wsMessage(): Buffer {
    this.#state.keepForThisTick();
    return (this.#wsMessage ??= Buffer.from(`{"type":"patch","bookId":${JSON.stringify(this.#state.bookId)},"data":${this.json as string}}`));
  }

  dropEncodings(): void {
    this.#frame = null;
    this.#frameWithoutId = null;
    this.#wsMessage = null;
  }
}

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
  /**
   * The state parsed, for building patches. Kept while the state lives (unlike the encodings):
   * the state patched now is the base of the next patch, and only delta connections parse.
   */
  #parsed: unknown = undefined;
  /** Patches from earlier versions, newest last; null until the first. */
  #patches: StatePatch[] | null = null;

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
      this.keepForThisTick();
    }
    return this.#frame;
  }

  /** The same event without an id, for every-book streams. */
  get frameWithoutId(): EncodedEvent {
    if (this.#frameWithoutId === null) {
      this.#frameWithoutId = EncodedEvent.progress(this.json);
      this.keepForThisTick();
    }
    return this.#frameWithoutId;
  }

  /** The WebSocket message, `{ type: 'progress', data: state }`. */
  get wsMessage(): Buffer {
    if (this.#wsMessage === null) {
      this.#wsMessage = Buffer.from(`{"type":"progress","data":${this.json}}`);
      this.keepForThisTick();
    }
    return this.#wsMessage;
  }

  /**
   * The patch from `base` (the state a connection has of this book) to this state, built on the
   * first call for that base and then shared; null when this state goes whole: a terminal state,
   * a change a merge patch cannot express (a member set to null), or a patch no smaller.
   */
  patchFrom(base: EncodedState): StatePatch | null {
    if (this.terminal || base.version >= this.version) return null;
    const patches = (this.#patches ??= []);
    for (const patch of patches) if (patch.baseVersion === base.version) return patch.json === null ? null : patch;
    const diff = mergePatchBetween(base.parsed, this.parsed);
    let json: string | null = null;
    if (diff !== null) {
      // A patch always holds `version`, so it is never `{}` (jsonWithBookId relies on it).
      json = JSON.stringify(diff);
      if (json.length >= this.json.length) json = null;
    }
    const patch = new StatePatch(this, base.version, json);
    if (patches.push(patch) > PATCHES_KEPT) patches.shift();
    return json === null ? null : patch;
  }

  /** The state parsed, once. */
  get parsed(): unknown {
    if (this.#parsed === undefined) this.#parsed = JSON.parse(this.json) as unknown;
    return this.#parsed;
  }

  /** Keeps this state's encodings (and its patches') until the end of the tick. */
  keepForThisTick(): void {
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
      if (state.#patches !== null) for (const patch of state.#patches) patch.dropEncodings();
      state.#encoded = false;
    }
  }
}
