import type { TextChunk, TextLog } from '../../broker/text-log.js';
import { MAX_CHAPTERS } from '../../progress/schema.js';

/** Where a reader is in a book's live text: it has the section's bytes up to `offset` of `attempt` (0: any attempt). */
export interface TextCursor {
  readonly chapter: number;
  readonly section: number;
  readonly attempt: number;
  readonly offset: number;
}

/** What a connection writes: text of a section from `offset` (a reset starts it over), or "this chapter is saved, fetch it". */
export type TextFrame =
  | { readonly kind: 'text'; readonly bookId: string; readonly chapter: number; readonly section: number; readonly attempt: number; readonly offset: number; readonly text: string; readonly reset?: true }
  | { readonly kind: 'chapter'; readonly bookId: string; readonly chapter: number; readonly saved: true };

/** How long chunks of one connection are merged, at most, before they are written. */
export const TEXT_COALESCE_MS = 50;
/** Text waiting for a slow client past which its connection ends with a resume point (it reconnects and gets one merged frame). */
export const TEXT_BACKLOG_BYTES = 1024 * 1024;

export interface TextFeedOptions {
  /** Frames are waiting and their window has passed: the transport takes them when it can write. */
  onDue: () => void;
  /** The client fell too far behind: the transport ends the connection, the client resumes from what it has. */
  onOverflow: () => void;
  /** Every-book feeds: whether the caller may read this book (asked once per book). */
  admits?: (bookId: string) => Promise<boolean>;
  coalesceMs?: number;
  backlogBytes?: number;
}

type PendingFrame = TextFrame & { bytes: number };

interface BookFeed {
  readonly bookId: string;
  /** What the client will have once the pending frames are written. */
  accepted: TextCursor | null;
  /** What the client has been written: the resume point its event ids carry. */
  sent: TextCursor | null;
  /** A catch-up read is under way: live chunks wait in `backlog`. */
  busy: boolean;
  /** Every-book feeds: null while the caller's right to the book is being checked. */
  allowed: boolean | null;
  readonly backlog: TextChunk[];
  backlogBytes: number;
  unsubscribe: (() => void) | null;
  removed: boolean;
}

const utf8 = (text: string) => Buffer.byteLength(text);

/**
 * One connection's live text, for SSE streams and WebSockets alike (only connections that asked
 * for text have one). Per book it keeps what the client has and turns the log's chunks into
 * contiguous frames: a chunk already covered is dropped, one ahead of the client's offset has
 * the gap read first, a new attempt becomes a reset. Subscribe first, then read: a resuming
 * client gets one merged frame of what it lacks, then live chunks. Chunks are merged for at most
 * `coalesceMs` (or one batch); nothing is ever dropped, a client too far behind is ended instead.
 */
export class TextFeed {
  readonly #texts: TextLog;
  readonly #options: Required<Omit<TextFeedOptions, 'admits'>> & Pick<TextFeedOptions, 'admits'>;
  readonly #books = new Map<string, BookFeed>();
  readonly #pending: PendingFrame[] = [];
  #pendingBytes = 0;
  /** Bytes of live chunks among the pending ones: what a client that does not read makes this process hold. */
  #liveBytes = 0;
  #timer: NodeJS.Timeout | null = null;
  #lastTake = 0;
  /** Bytes of live chunks waiting in the books' backlogs while their catch-up reads: they count toward the bound too. */
  #backlogBytes = 0;
  /** Catch-up reads waiting for the client to take what is pending (at most `backlogBytes` of it, plus one section). */
  readonly #roomWaiters: Array<() => void> = [];
  /** Resolves once a catch-up first waits for room: add() then resolves too, so the transport opens and drains. */
  readonly #blocked: { promise: Promise<void>; resolve: () => void };
  #closed = false;
  #overflowed = false;
  #unsubscribeAll: (() => void) | null = null;

  constructor(texts: TextLog, options: TextFeedOptions) {
    this.#texts = texts;
    this.#options = { coalesceMs: TEXT_COALESCE_MS, backlogBytes: TEXT_BACKLOG_BYTES, ...options };
    let resolve = () => {};
    const promise = new Promise<void>((r) => (resolve = r));
    this.#blocked = { promise, resolve };
  }

  get hasPending(): boolean {
    return this.#pending.length > 0;
  }

  /**
   * Follows a book's text from `known` (null: from the start of the section being written);
   * resolves once caught up, or once the catch-up waits for the client to take what it read (it
   * goes on as the client reads: a connection holds at most the backlog bound plus one section).
   */
  async add(bookId: string, known: TextCursor | null): Promise<void> {
    if (this.#closed || this.#books.has(bookId)) return;
    const book = this.#book(bookId, true);
    book.busy = true;
    const unsubscribe = await this.#texts.subscribeText(bookId, (chunk) => this.#live(book, chunk));
    if (book.removed || this.#closed) return unsubscribe();
    book.unsubscribe = unsubscribe;
    const resumed = this.#resume(book, known).finally(() => this.#settle(book));
    const outcome = await Promise.race([resumed.then(() => 'done' as const), this.#blocked.promise.then(() => 'blocked' as const)]);
    // Caught up later, as the client reads: a read that fails then ends the client, which resumes.
    if (outcome === 'blocked') resumed.catch(() => this.#overflow());
  }

  /** Follows every book's text (the every-book stream); each book starts at its section being written. */
  async addAll(): Promise<void> {
    const unsubscribe = await this.#texts.subscribeAllText((chunk) => {
      const book = this.#books.get(chunk.bookId) ?? this.#admit(chunk.bookId);
      this.#live(book, chunk);
    });
    if (this.#closed) return unsubscribe();
    this.#unsubscribeAll = unsubscribe;
  }

  remove(bookId: string): void {
    const book = this.#books.get(bookId);
    if (!book) return;
    book.removed = true;
    book.unsubscribe?.();
    this.#dropBacklog(book);
    this.#books.delete(bookId);
  }

  /** What the client has of a book, for resume ids. */
  position(bookId: string): TextCursor | null {
    return this.#books.get(bookId)?.sent ?? null;
  }

  /** The next frame to write, now counted as sent; null when none waits. */
  take(): TextFrame | null {
    const frame = this.#pending.shift();
    if (!frame) return null;
    this.#pendingBytes -= frame.bytes;
    if (this.#pending.length === 0) this.#liveBytes = 0;
    if (this.#pendingBytes <= this.#options.backlogBytes) this.#wake();
    this.#lastTake = Date.now();
    const book = this.#books.get(frame.bookId);
    if (book) book.sent = after(book.sent, frame);
    const { bytes: _, ...out } = frame;
    return out as TextFrame;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#unsubscribeAll?.();
    for (const bookId of [...this.#books.keys()]) this.remove(bookId);
    this.#pending.length = 0;
    this.#pendingBytes = 0;
    this.#wake();
  }

  #wake(): void {
    for (const resolve of this.#roomWaiters.splice(0)) resolve();
  }

  /** Resolves when the client has taken enough of what is pending for another read (or the feed closed). */
  async #room(): Promise<void> {
    if (this.#closed || this.#pendingBytes <= this.#options.backlogBytes) return;
    this.#blocked.resolve();
    await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
  }

  #dropBacklog(book: BookFeed): void {
    this.#backlogBytes -= book.backlogBytes;
    book.backlogBytes = 0;
    book.backlog.length = 0;
  }

  #book(bookId: string, allowed: boolean | null): BookFeed {
    const book: BookFeed = { bookId, accepted: null, sent: null, busy: false, allowed, backlog: [], backlogBytes: 0, unsubscribe: null, removed: false };
    this.#books.set(bookId, book);
    return book;
  }

  #admit(bookId: string): BookFeed {
    const admits = this.#options.admits;
    const book = this.#book(bookId, admits ? null : true);
    if (admits) {
      void admits(bookId)
        .catch(() => false)
        .then((allowed) => {
          book.allowed = allowed;
          if (!allowed) this.#dropBacklog(book);
          else this.#settle(book);
        });
    }
    return book;
  }

  async #resume(book: BookFeed, known: TextCursor | null): Promise<void> {
    const current = await this.#texts.current(book.bookId);
    if (!current) {
      book.accepted = known;
      book.sent = known;
      return;
    }
    if (known === null) {
      // A new reader gets the chapter being written, from its first section.
      await this.#sections(book, current.chapter, 1, current.section, null);
      return;
    }
    if (known.chapter > current.chapter || (known.chapter === current.chapter && known.section > current.section)) {
      book.accepted = known;
      book.sent = known;
      return;
    }
    let from = 1;
    if (known.chapter < current.chapter) {
      // The rest of those chapters is in Postgres by now: the client fetches them (a book has at most MAX_CHAPTERS).
      for (let chapter = Math.max(known.chapter, current.chapter - MAX_CHAPTERS); chapter < current.chapter; chapter++) {
        this.#push(book, { kind: 'chapter', bookId: book.bookId, chapter, saved: true, bytes: 0 });
      }
    } else {
      from = Math.max(1, known.section);
      book.accepted = known;
      book.sent = known;
    }
    await this.#sections(book, current.chapter, from, current.section, known.chapter === current.chapter ? known : null);
  }

  /**
   * Sections `first`..`last` of a chapter, the first from `known` when it is in that section; stops
   * at the first section the log does not hold (sections are written in order, as liveChapter
   * reads them), and once the book or the connection is gone: a reader costs one read per section
   * held, whatever section number a writer used.
   */
  async #sections(book: BookFeed, chapter: number, first: number, last: number, known: TextCursor | null): Promise<void> {
    for (let section = first; section <= last; section++) {
      if (this.#gone(book)) return;
      const from = known !== null && known.chapter === chapter && known.section === section ? known : null;
      if (!(await this.#catchUp(book, chapter, section, from))) return;
    }
  }

  #gone(book: BookFeed): boolean {
    return book.removed || this.#closed;
  }

  /**
   * Reads what the client lacks of a section: from its offset, or (a new attempt, or none) a reset
   * to the whole text. False when the log holds no text of the section (or the book is gone).
   */
  async #catchUp(book: BookFeed, chapter: number, section: number, from: TextCursor | null): Promise<boolean> {
    await this.#room();
    if (this.#gone(book)) return false;
    if (from !== null && from.offset > 0) {
      const tail = await this.#texts.read(book.bookId, chapter, section, from.offset);
      if (tail === null || this.#gone(book)) return false;
      // Without the attempt (a bare textFrom) only a section never reset is known to be the reader's;
      // an offset inside a character is no client's (frames end on characters): it gets the section anew.
      const ours = (from.attempt === 0 ? tail.attempt === 1 : tail.attempt === from.attempt) && tail.length >= from.offset;
      if (ours && (tail.text.charCodeAt(0) !== 0xfffd || (await this.#onCharacter(book, chapter, section, from.offset)))) {
        book.accepted = { chapter, section, attempt: tail.attempt, offset: from.offset };
        if (tail.text !== '') this.#pushText(book, { chapter, section, attempt: tail.attempt, offset: from.offset, text: tail.text });
        return true;
      }
    }
    const whole = await this.#texts.read(book.bookId, chapter, section, 0);
    if (whole === null || this.#gone(book)) return false;
    const reset = from !== null && (from.offset > 0 || from.attempt !== whole.attempt);
    if (whole.text === '' && !reset) {
      book.accepted = { chapter, section, attempt: whole.attempt, offset: 0 };
      return true;
    }
    this.#pushText(book, { chapter, section, attempt: whole.attempt, offset: 0, text: whole.text, ...(reset ? { reset: true as const } : {}) });
    return true;
  }

  /** Whether byte `offset` of the section starts a character (a tail read from inside one starts with U+FFFD, as a real U+FFFD does). */
  async #onCharacter(book: BookFeed, chapter: number, section: number, offset: number): Promise<boolean> {
    const whole = await this.#texts.read(book.bookId, chapter, section, 0);
    return whole !== null && startsCharacter(Buffer.from(whole.text, 'utf8'), offset);
  }

  #live(book: BookFeed, chunk: TextChunk): void {
    if (book.removed || this.#closed || book.allowed === false) return;
    if (book.busy || book.allowed === null) {
      book.backlog.push(chunk);
      const bytes = utf8(chunk.text);
      book.backlogBytes += bytes;
      this.#backlogBytes += bytes;
      if (this.#liveBytes + this.#backlogBytes > this.#options.backlogBytes) this.#overflow();
      return;
    }
    const known = book.accepted;
    if (chunk.reset) return this.#pushText(book, { ...chunk, offset: 0, text: '', reset: true }, true);
    if (known === null || chunk.chapter > known.chapter || (chunk.chapter === known.chapter && chunk.section > known.section)) {
      // Leaving a section, or a first chunk past the chapter's start: the client gets what it lacks
      // before (announcements are at-most-once while the backend reconnects).
      if (known === null ? chunk.section > 1 || chunk.offset > 0 : known.section > 0) return this.#advance(book, known, chunk);
      if (chunk.offset === 0) return this.#pushText(book, chunk, true);
      return this.#fill(book, chunk.chapter, chunk.section, null);
    }
    if (chunk.chapter !== known.chapter || chunk.section !== known.section) return; // an earlier section: stale
    if (chunk.attempt !== known.attempt && !(known.attempt === 0 && chunk.attempt === 1)) {
      // A reset this client never saw (or a chunk of an attempt it already left behind).
      if (chunk.attempt > known.attempt) this.#fill(book, chunk.chapter, chunk.section, { ...known, attempt: -1 });
      return;
    }
    const end = chunk.offset + utf8(chunk.text);
    if (end <= known.offset) return; // already covered
    if (chunk.offset > known.offset) return this.#fill(book, chunk.chapter, chunk.section, known);
    const text = chunk.offset === known.offset ? chunk.text : Buffer.from(chunk.text).subarray(known.offset - chunk.offset).toString('utf8');
    this.#pushText(book, { chapter: chunk.chapter, section: chunk.section, attempt: chunk.attempt, offset: known.offset, text }, true);
  }

  /** A gap: reads it (live chunks wait meanwhile, and those it covers are then dropped). */
  #fill(book: BookFeed, chapter: number, section: number, from: TextCursor | null): void {
    book.busy = true;
    void this.#catchUp(book, chapter, section, from)
      .catch(() => {
        // The log did not answer: the client is ended and resumes from what it has.
        this.#overflow();
      })
      .finally(() => this.#settle(book));
  }

  /**
   * The first chunk of a later section: the rest of the client's section, and the sections of the
   * chunk's chapter before it that the client has not had (all of them for a new reader), read
   * first; then the chunk.
   */
  #advance(book: BookFeed, known: TextCursor | null, chunk: TextChunk): void {
    book.busy = true;
    book.backlog.unshift(chunk);
    const bytes = utf8(chunk.text);
    book.backlogBytes += bytes;
    this.#backlogBytes += bytes;
    const catchUp = async () => {
      if (known !== null) await this.#catchUp(book, known.chapter, known.section, known);
      const first = known !== null && known.chapter === chunk.chapter ? known.section + 1 : 1;
      await this.#sections(book, chunk.chapter, first, chunk.section - 1, null);
      // Between sections: the chunk (and what follows) now starts the next one.
      book.accepted = { chapter: chunk.chapter, section: 0, attempt: 0, offset: 0 };
    };
    void catchUp()
      .catch(() => this.#overflow())
      .finally(() => this.#settle(book));
  }

  /** The catch-up is done: the chunks that came meanwhile, in order. */
  #settle(book: BookFeed): void {
    book.busy = false;
    while (book.backlog.length > 0 && !book.busy) {
      const chunk = book.backlog.shift() as TextChunk;
      const bytes = utf8(chunk.text);
      book.backlogBytes -= bytes;
      this.#backlogBytes -= bytes;
      this.#live(book, chunk);
    }
  }

  /** `live`: a chunk as it came, which counts toward the backlog bound (catch-up reads wait for room instead, see #room). */
  #pushText(book: BookFeed, at: Omit<TextChunk, 'bookId'>, live = false): void {
    const bytes = utf8(at.text);
    const frame: PendingFrame = { kind: 'text', bookId: book.bookId, chapter: at.chapter, section: at.section, attempt: at.attempt, offset: at.offset, text: at.text, bytes, ...(at.reset ? { reset: true as const } : {}) };
    this.#push(book, frame, live);
  }

  #push(book: BookFeed, frame: PendingFrame, live = false): void {
    book.accepted = frame.kind === 'text' ? after(book.accepted, frame) : { chapter: frame.chapter + 1, section: 0, attempt: 0, offset: 0 };
    const last = this.#pending.at(-1);
    if (
      frame.kind === 'text' && !frame.reset && last?.kind === 'text' && last.bookId === frame.bookId && last.chapter === frame.chapter &&
      last.section === frame.section && last.attempt === frame.attempt && last.offset + last.bytes === frame.offset
    ) {
      this.#pending[this.#pending.length - 1] = { ...last, text: last.text + frame.text, bytes: last.bytes + frame.bytes };
    } else {
      this.#pending.push(frame);
    }
    this.#pendingBytes += frame.bytes;
    if (live) this.#liveBytes += frame.bytes;
    if (this.#liveBytes + this.#backlogBytes > this.#options.backlogBytes) return this.#overflow();
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== null || this.#closed) return;
    const delay = Math.max(0, this.#lastTake + this.#options.coalesceMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (!this.#closed && this.#pending.length > 0) this.#options.onDue();
    }, delay);
  }

  #overflow(): void {
    if (this.#overflowed || this.#closed) return;
    this.#overflowed = true;
    this.#options.onOverflow();
  }
}

/** Whether byte `offset` of `bytes` starts a UTF-8 character (or is the end): not a continuation byte. */
export function startsCharacter(bytes: Uint8Array, offset: number): boolean {
  return offset >= bytes.length || ((bytes[offset] as number) & 0xc0) !== 0x80;
}

/** The cursor once `frame` is applied. */
function after(cursor: TextCursor | null, frame: TextFrame & { bytes?: number }): TextCursor | null {
  if (frame.kind === 'chapter') return { chapter: frame.chapter + 1, section: 0, attempt: 0, offset: 0 };
  const bytes = frame.bytes ?? utf8(frame.text);
  void cursor;
  return { chapter: frame.chapter, section: frame.section, attempt: frame.attempt, offset: frame.offset + bytes };
}

const CURSOR = /^(\d{1,9}):(\d{1,9}):(\d{1,9}):(\d{1,15})$/;
const TEXT_FROM = /^(\d{1,9}):(\d{1,9}):(?:(\d{1,9}):)?(\d{1,15})$/;

/** A resume id's text part for one book: `<chapter>:<section>:<attempt>:<offset>`, or `-` for none. */
export function formatCursor(cursor: TextCursor | null): string {
  return cursor === null ? '-' : `${cursor.chapter}:${cursor.section}:${cursor.attempt}:${cursor.offset}`;
}

/** The inverse of formatCursor; undefined when `raw` is neither form. */
export function parseCursor(raw: string): TextCursor | null | undefined {
  if (raw === '-') return null;
  const m = CURSOR.exec(raw);
  return m ? { chapter: Number(m[1]), section: Number(m[2]), attempt: Number(m[3]), offset: Number(m[4]) } : undefined;
}

/** `?textFrom=<chapter>:<section>:<offset>` (or with the attempt before the offset); undefined when malformed. */
export function parseTextFrom(raw: string): TextCursor | undefined {
  const m = TEXT_FROM.exec(raw);
  return m ? { chapter: Number(m[1]), section: Number(m[2]), attempt: m[3] === undefined ? 0 : Number(m[3]), offset: Number(m[4]) } : undefined;
}

/** A frame as the wire carries it (SSE data, or a WebSocket message without its `type`). */
export function frameData(frame: TextFrame): Record<string, unknown> {
  if (frame.kind === 'chapter') return { bookId: frame.bookId, chapter: frame.chapter, saved: true };
  const data: Record<string, unknown> = { bookId: frame.bookId, chapter: frame.chapter, section: frame.section, attempt: frame.attempt, offset: frame.offset, text: frame.text };
  if (frame.reset) data.reset = true;
  return data;
}
