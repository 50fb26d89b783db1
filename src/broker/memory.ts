import { DEFAULT_TERMINAL_TTL_SECONDS } from '../config.js';
import type { BookProgress } from '../progress/schema.js';
import type { CommitResult, Fence } from './commit.js';
import type { Broker, DirtyClaims, ProgressListener } from './broker.js';

interface Held {
  state: BookProgress;
  expiresAt: number;
}

interface Claim {
  owner: string;
  books: string[];
  expiresAt: number;
}

const SWEEP_INTERVAL_MS = 60_000;

/** The embedded broker: one process, no Redis. Same contract as the Redis one. */
export class MemoryBroker implements Broker, DirtyClaims {
  readonly #ttlMs: number;
  readonly #terminalTtlMs: number;
  readonly #onFinished: (bookId: string, expiresAt: number) => void;
  readonly #now: () => number;
  readonly #held = new Map<string, Held>();
  /** The highest fence committed per book (see Fence). */
  readonly #fences = new Map<string, Fence>();
  readonly #listeners = new Map<string, Set<ProgressListener>>();
  readonly #allListeners = new Set<ProgressListener>();
  #dirty = new Set<string>();
  #claim: Claim | null = null;
  #lastRound = -1;
  readonly #sweeper: NodeJS.Timeout;

  /**
   * `terminalTtlSeconds`: how long a finished book's (COMPLETE, ERROR) state is held instead;
   * `onFinished` is told when it will expire (the memory text log drops the book's text by then).
   */
  constructor(options: { ttlSeconds: number; terminalTtlSeconds?: number; now?: () => number; onFinished?: (bookId: string, expiresAt: number) => void }) {
    this.#ttlMs = options.ttlSeconds * 1000;
    this.#terminalTtlMs = (options.terminalTtlSeconds ?? DEFAULT_TERMINAL_TTL_SECONDS) * 1000;
    this.#onFinished = options.onFinished ?? (() => {});
    this.#now = options.now ?? Date.now;
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS).unref();
  }

  async get(bookId: string): Promise<BookProgress | null> {
    return this.#read(bookId);
  }

  /** The highest fence committed for bookId (0: none): the memory text log fences by it. */
  fenceOf(bookId: string): Fence {
    return this.#fences.get(bookId) ?? 0;
  }

  async getMany(bookIds: readonly string[]): Promise<Array<BookProgress | null>> {
    return bookIds.map((id) => this.#read(id));
  }

  async commit(state: BookProgress, expectedVersion: number | null, fence?: Fence): Promise<CommitResult> {
    if (fence !== undefined && (this.#fences.get(state.bookId) ?? 0) > fence) return { committed: false, fenced: true };
    const current = this.#read(state.bookId);
    if ((current?.version ?? null) !== expectedVersion) return { committed: false, current };
    if (fence !== undefined) this.#fences.set(state.bookId, fence);
    const copy = structuredClone(state);
    const finished = state.status === 'COMPLETE' || state.status === 'ERROR';
    const expiresAt = this.#now() + (finished ? this.#terminalTtlMs : this.#ttlMs);
    this.#held.set(state.bookId, { state: copy, expiresAt });
    if (finished) this.#onFinished(state.bookId, expiresAt);
    this.#dirty.add(state.bookId);
    const json = JSON.stringify(copy);
    for (const listener of this.#listeners.get(state.bookId) ?? []) listener(structuredClone(copy), json);
    for (const listener of this.#allListeners) listener(structuredClone(copy), json);
    return { committed: true };
  }

  async subscribe(bookId: string, listener: ProgressListener): Promise<() => void> {
    let listeners = this.#listeners.get(bookId);
    if (!listeners) this.#listeners.set(bookId, (listeners = new Set()));
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.#listeners.get(bookId) === listeners) this.#listeners.delete(bookId);
    };
  }

  isLive(): boolean {
    return true;
  }

  /** Never disconnected, so never a gap. */
  async subscribeAll(listener: ProgressListener, _onGap: () => void): Promise<() => void> {
    this.#allListeners.add(listener);
    return () => {
      this.#allListeners.delete(listener);
    };
  }

  async claimDirty(owner: string, leaseMs: number, round: number | null): Promise<string[] | null> {
    const claim = this.#claim;
    if (round !== null && round <= this.#lastRound) return null;
    if (claim && claim.expiresAt > this.#now() && claim.owner !== owner) return null;
    if (round !== null) this.#lastRound = round;
    if (claim) for (const book of claim.books) this.#dirty.add(book);
    const books = [...this.#dirty];
    this.#dirty = new Set();
    this.#claim = { owner, books, expiresAt: this.#now() + leaseMs };
    return books;
  }

  async settleClaim(owner: string, done: boolean): Promise<void> {
    const claim = this.#claim;
    if (!claim || claim.owner !== owner) return;
    if (!done) for (const book of claim.books) this.#dirty.add(book);
    this.#claim = null;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#listeners.clear();
    this.#allListeners.clear();
  }

  #read(bookId: string): BookProgress | null {
    const held = this.#held.get(bookId);
    if (!held) return null;
    if (held.expiresAt <= this.#now()) {
      this.#held.delete(bookId);
      this.#fences.delete(bookId);
      return null;
    }
    return structuredClone(held.state);
  }

  #sweep(): void {
    const now = this.#now();
    for (const [id, held] of this.#held) {
      if (held.expiresAt > now) continue;
      this.#held.delete(id);
      this.#fences.delete(id);
    }
  }
}

