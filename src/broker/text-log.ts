import type { Fence } from './commit.js';

/**
 * Live text: the words of the section being written, next to the book's progress. Text is a log,
 * not a state: a section's text grows by appends at contiguous offsets (UTF-8 bytes), or starts
 * over with a reset (a new attempt, after a crash, a takeover or a failed generator stream).
 * docs/live-text.md describes the model and the wire; docs/protocol.md the Redis layout.
 */

/** Where a chunk goes: the section's chapter and section (1-based) and its byte offset. */
export interface TextPosition {
  readonly chapter: number;
  readonly section: number;
  readonly offset: number;
}

/** One append as readers get it; a reset empties the section (offset 0, text ''). */
export interface TextChunk extends TextPosition {
  readonly bookId: string;
  /** 1 when the section starts, +1 at each reset. */
  readonly attempt: number;
  readonly text: string;
  readonly reset?: true;
}

export type AppendResult =
  | { readonly ok: true; readonly length: number }
  /** `offset` is not the section's length: nothing was written (a retried append never doubles text). */
  | { readonly ok: false; readonly reason: 'offset_mismatch'; readonly length: number }
  /** The section would pass its size limit: nothing was written. */
  | { readonly ok: false; readonly reason: 'too_large'; readonly length: number }
  /** The fence is lower than the book's: the writer was superseded. */
  | { readonly ok: false; readonly reason: 'fenced' };

export interface SectionText {
  readonly attempt: number;
  /** The text from the offset asked for. */
  readonly text: string;
  /** The section's whole length in bytes. */
  readonly length: number;
}

/** The section being written. */
export interface CurrentSection {
  readonly chapter: number;
  readonly section: number;
  readonly attempt: number;
}

export type TextListener = (chunk: TextChunk) => void;

/**
 * The text of each book's chapter being written. Appends and resets are atomic with their
 * announcement, fenced like every commit of the book (a fence lower than the book's is refused).
 * Listeners of one book see its chunks in append order; like progress, delivery is at-most-once
 * while the backend is disconnected, and readers catch up with `read`.
 */
export interface TextLog {
  /** Starts a section, or starts it over (a reset, announced) when it holds text or was begun; resolves to its attempt, or null when fenced. */
  beginSection(bookId: string, chapter: number, section: number, fence?: Fence): Promise<number | null>;
  append(bookId: string, at: TextPosition, text: string, fence?: Fence): Promise<AppendResult>;
  /** The section's text from byte `from`; null when none is held (never written, or expired). */
  read(bookId: string, chapter: number, section: number, from?: number): Promise<SectionText | null>;
  /** The section being written, or null. */
  current(bookId: string): Promise<CurrentSection | null>;
  /** The chapter is saved in Postgres: its sections' text expires after a grace, so late readers still catch up. */
  chapterSaved(bookId: string, chapter: number, sections: number): Promise<void>;
  /** Resolves once `listener` receives every later chunk of bookId; the result unsubscribes it. */
  subscribeText(bookId: string, listener: TextListener): Promise<() => void>;
  /** Every book's chunks (every-book streams with text). */
  subscribeAllText(listener: TextListener): Promise<() => void>;
}

/** MAX_SECTION_TEXT_BYTES's default: 256 KiB. */
export { DEFAULT_MAX_SECTION_TEXT_BYTES } from '../config.js';

/** How long a saved chapter's text stays readable from the broker. */
export const TEXT_GRACE_SECONDS = 30;

/** The section's key within a book, as the attempts are kept: `<chapter>:<section>`. */
export function sectionKey(chapter: number, section: number): string {
  return `${chapter}:${section}`;
}
