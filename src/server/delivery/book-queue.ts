import type { EncodedState } from './encoded-state.js';

/** What one client has of one book, and the newer state waiting to be written to it. */
interface BookSlot {
  readonly bookId: string;
  /** The version the client has; 0 for none. */
  sent: number;
  pending: EncodedState | null;
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

  /** `known`: versions the client already has (Last-Event-ID, or a WebSocket subscribe). */
  constructor(known: Iterable<readonly [string, number]> = []) {
    for (const [bookId, version] of known) this.know(bookId, version);
  }

  get hasPending(): boolean {
    return this.#pendingCount > 0;
  }

  /** The version the client has of a book; 0 for none. */
  sent(bookId: string): number {
    return this.#slots.get(bookId)?.sent ?? 0;
  }

  /** The client has this version (or a newer one it already had). */
  know(bookId: string, version: number): void {
    const slot = this.#slot(bookId);
    slot.sent = Math.max(slot.sent, version);
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
  }

  #slot(bookId: string): BookSlot {
    let slot = this.#slots.get(bookId);
    if (!slot) {
      slot = { bookId, sent: 0, pending: null, nextDue: null };
      this.#slots.set(bookId, slot);
    }
    return slot;
  }
}
