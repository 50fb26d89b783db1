import type { EncodedState } from './encoded-state.js';

/** What one client has of one book, and the newer state waiting to be written to it. */
interface BookSlot {
  readonly bookId: string;
  /** The version the client has; 0 for none. */
  sent: number;
  pending: EncodedState | null;
  /** Whether the client takes patches of this book (`delta=merge-patch`): then `last` is kept. */
  delta: boolean;
  /** The state last taken for the client, the base of its next patch (null: none, or no patches). */
  last: EncodedState | null;
  /** The slot after this one in the queue of pending books. */
  nextDue: BookSlot | null;
}

/**
 * One client's books, for SSE streams and WebSocket connections alike: the version it has of each,
 * and the newest state not yet written (latest state wins; a pending terminal state is never
 * replaced), handed out in the order they became pending.
 *
 * A book's slot is made once and changed in place, pending ones linked through their slots, so
 * an update allocates nothing here (why: docs/performance.md, "Topics keep no EncodedState").
 */
export class BookQueue {
  readonly #slots = new Map<string, BookSlot>();
  #firstDue: BookSlot | null = null;
  #lastDue: BookSlot | null = null;
  #pendingCount = 0;
  /** Whether new slots take patches. */
  readonly #delta: boolean;
  #base: EncodedState | null = null;

  /**
   * `known`: versions the client already has (Last-Event-ID, or a WebSocket subscribe): their
   * states are not kept, so their next update goes whole. `delta`: every book takes patches.
   */
  constructor(known: Iterable<readonly [string, number]> = [], delta = false) {
    this.#delta = delta;
    for (const [bookId, version] of known) this.know(bookId, version);
  }

  /**
   * What the client had of the book of the update take() returned last, the base for a patch
   * to it; null when it had nothing kept, or takes no patches of it (then send it whole).
   */
  get base(): EncodedState | null {
    return this.#base;
  }

  get hasPending(): boolean {
    return this.#pendingCount > 0;
  }

  /** The version the client has of a book; 0 for none. */
  sent(bookId: string): number {
    return this.#slots.get(bookId)?.sent ?? 0;
  }

  /** The client has this version (or a newer one it already had); `delta`: whether it takes patches of the book. */
  know(bookId: string, version: number, delta?: boolean): void {
    const slot = this.#slot(bookId);
    slot.sent = Math.max(slot.sent, version);
    if (delta !== undefined) slot.delta = delta;
  }

  /** Queues an update the client lacks; false when it has it, or has a newer or final one pending. */
  offer(update: EncodedState): boolean {
    const slot = this.#slot(update.bookId);
    if (update.version <= slot.sent) return false;
    const pending = slot.pending;
    if (pending !== null && (pending.terminal || pending.version >= update.version)) return false;
    slot.pending = update;
    if (pending === null) {
      this.#pendingCount++;
      if (this.#lastDue === null) this.#firstDue = slot;
      else this.#lastDue.nextDue = slot;
      this.#lastDue = slot;
    }
    return true;
  }

  /** The next pending update, now counted as sent; null when none is left. */
  take(): EncodedState | null {
    for (let slot = this.#firstDue; slot !== null; slot = this.#firstDue) {
      this.#firstDue = slot.nextDue;
      if (this.#firstDue === null) this.#lastDue = null;
      slot.nextDue = null;
      const update = slot.pending;
      // A slot forgotten while pending stays queued, empty: skipped here.
      if (update === null) continue;
      slot.pending = null;
      slot.sent = Math.max(slot.sent, update.version);
      this.#pendingCount--;
      if (slot.delta) {
        this.#base = slot.last;
        slot.last = update;
      } else this.#base = null;
      return update;
    }
    return null;
  }

  /** Drops a book: what the client has of it and what is pending. */
  forget(bookId: string): void {
    const slot = this.#slots.get(bookId);
    if (!slot) return;
    if (slot.pending !== null) this.#pendingCount--;
    slot.pending = null;
    slot.last = null;
    this.#slots.delete(bookId);
  }

  /** Drops everything pending; versions sent are kept. */
  clearPending(): void {
    while (this.#firstDue !== null) {
      const slot = this.#firstDue;
      this.#firstDue = slot.nextDue;
      slot.nextDue = null;
      slot.pending = null;
    }
    this.#lastDue = null;
    this.#pendingCount = 0;
    this.#base = null;
  }

  #slot(bookId: string): BookSlot {
    let slot = this.#slots.get(bookId);
    if (!slot) {
      slot = { bookId, sent: 0, pending: null, delta: this.#delta, last: null, nextDue: null };
      this.#slots.set(bookId, slot);
    }
    return slot;
  }
}
