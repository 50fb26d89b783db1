import type { Fence } from './commit.js';
import { DEFAULT_MAX_SECTION_TEXT_BYTES, TEXT_GRACE_SECONDS, sectionKey } from './text-log.js';
import type { AppendResult, CurrentSection, SectionText, TextChunk, TextListener, TextLog, TextPosition } from './text-log.js';

const SWEEP_INTERVAL_MS = 60_000;

interface Section {
  text: string;
  bytes: number;
  attempt: number;
  expiresAt: number;
}

interface BookText {
  readonly sections: Map<string, Section>;
  /** Each section's last attempt, kept past its text's expiry (as the Redis hash is): attempts only go up. */
  readonly attempts: Map<string, number>;
  /** When the attempts expire (the hash's TTL, refreshed by every write). */
  expiresAt: number;
  current: CurrentSection | null;
}

export interface MemoryTextLogOptions {
  ttlSeconds: number;
  /** The book's fence as its broker holds it (0: none). */
  fenceOf: (bookId: string) => Fence;
  maxSectionBytes?: number;
  graceSeconds?: number;
  now?: () => number;
}

/** The embedded text log: one process, no Redis. Same contract as the Redis one. */
export class MemoryTextLog implements TextLog {
  readonly #options: Required<Omit<MemoryTextLogOptions, 'fenceOf'>> & Pick<MemoryTextLogOptions, 'fenceOf'>;
  readonly #books = new Map<string, BookText>();
  readonly #listeners = new Map<string, Set<TextListener>>();
  readonly #allListeners = new Set<TextListener>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: MemoryTextLogOptions) {
    this.#options = {
      maxSectionBytes: DEFAULT_MAX_SECTION_TEXT_BYTES,
      graceSeconds: TEXT_GRACE_SECONDS,
      now: Date.now,
      ...options,
    };
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS).unref();
  }

  close(): void {
    clearInterval(this.#sweeper);
    this.#listeners.clear();
    this.#allListeners.clear();
  }

  async beginSection(bookId: string, chapter: number, section: number, fence?: Fence): Promise<number | null> {
    if (this.#fenced(bookId, fence)) return null;
    const book = this.#book(bookId);
    const key = sectionKey(chapter, section);
    const held = this.#live(book, key);
    book.current = { chapter, section, attempt: (book.attempts.get(key) ?? 0) + 1 };
    this.#keep(book, key, book.current.attempt);
    book.sections.set(key, { text: '', bytes: 0, attempt: book.current.attempt, expiresAt: this.#expiry(this.#options.ttlSeconds) });
    if (held) this.#announce({ bookId, chapter, section, attempt: book.current.attempt, offset: 0, text: '', reset: true });
    return book.current.attempt;
  }

  async append(bookId: string, at: TextPosition, text: string, fence?: Fence): Promise<AppendResult> {
    if (this.#fenced(bookId, fence)) return { ok: false, reason: 'fenced' };
    const book = this.#book(bookId);
    const key = sectionKey(at.chapter, at.section);
    const held = this.#live(book, key);
    const length = held?.bytes ?? 0;
    if (at.offset !== length) return { ok: false, reason: 'offset_mismatch', length };
    const bytes = Buffer.byteLength(text);
    if (length + bytes > this.#options.maxSectionBytes) return { ok: false, reason: 'too_large', length };
    const section = held ?? { text: '', bytes: 0, attempt: (book.attempts.get(key) ?? 0) + 1, expiresAt: 0 };
    this.#keep(book, key, section.attempt);
    section.text += text;
    section.bytes += bytes;
    section.expiresAt = this.#expiry(this.#options.ttlSeconds);
    book.sections.set(key, section);
    book.current = { chapter: at.chapter, section: at.section, attempt: section.attempt };
    this.#announce({ bookId, chapter: at.chapter, section: at.section, attempt: section.attempt, offset: length, text });
    return { ok: true, length: section.bytes };
  }

  async read(bookId: string, chapter: number, section: number, from = 0): Promise<SectionText | null> {
    const book = this.#books.get(bookId);
    const held = book ? this.#live(book, sectionKey(chapter, section)) : null;
    if (!held) return null;
    const text = from <= 0 ? held.text : Buffer.from(held.text, 'utf8').subarray(from).toString('utf8');
    return { attempt: held.attempt, text, length: held.bytes };
  }

  async current(bookId: string): Promise<CurrentSection | null> {
    return this.#books.get(bookId)?.current ?? null;
  }

  async chapterSaved(bookId: string, chapter: number, sections: number): Promise<void> {
    const book = this.#books.get(bookId);
    if (!book) return;
    const expiresAt = this.#expiry(this.#options.graceSeconds);
    for (let section = 1; section <= sections; section++) {
      const held = book.sections.get(sectionKey(chapter, section));
      if (held) held.expiresAt = Math.min(held.expiresAt, expiresAt);
    }
  }

  /** The book finished: none of its text outlives `expiresAt` (when its state expires). */
  bookFinished(bookId: string, expiresAt: number): void {
    const book = this.#books.get(bookId);
    if (!book) return;
    for (const held of book.sections.values()) held.expiresAt = Math.min(held.expiresAt, expiresAt);
    book.expiresAt = Math.min(book.expiresAt, expiresAt);
  }

  async subscribeText(bookId: string, listener: TextListener): Promise<() => void> {
    let listeners = this.#listeners.get(bookId);
    if (!listeners) this.#listeners.set(bookId, (listeners = new Set()));
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.#listeners.get(bookId) === listeners) this.#listeners.delete(bookId);
    };
  }

  async subscribeAllText(listener: TextListener): Promise<() => void> {
    this.#allListeners.add(listener);
    return () => {
      this.#allListeners.delete(listener);
    };
  }

  #fenced(bookId: string, fence: Fence | undefined): boolean {
    return fence !== undefined && this.#options.fenceOf(bookId) > fence;
  }

  #book(bookId: string): BookText {
    let book = this.#books.get(bookId);
    if (!book || (book.sections.size === 0 && book.expiresAt <= this.#options.now())) {
      this.#books.set(bookId, (book = { sections: new Map(), attempts: new Map(), expiresAt: 0, current: null }));
    }
    return book;
  }

  #keep(book: BookText, key: string, attempt: number): void {
    book.attempts.set(key, attempt);
    book.expiresAt = this.#expiry(this.#options.ttlSeconds);
  }

  /** The section unless it expired (then it is dropped, and the book once it holds none). */
  #live(book: BookText, key: string): Section | null {
    const held = book.sections.get(key);
    if (!held) return null;
    if (held.expiresAt > this.#options.now()) return held;
    book.sections.delete(key);
    return null;
  }

  #sweep(): void {
    for (const [bookId, book] of this.#books) {
      for (const key of [...book.sections.keys()]) this.#live(book, key);
      if (book.sections.size === 0 && book.expiresAt <= this.#options.now()) this.#books.delete(bookId);
    }
  }

  #expiry(seconds: number): number {
    return this.#options.now() + seconds * 1000;
  }

  #announce(chunk: TextChunk): void {
    for (const listener of this.#listeners.get(chunk.bookId) ?? []) listener(chunk);
    for (const listener of this.#allListeners) listener(chunk);
  }
}
