/** A section's text as the caller of watch() sees it: the whole text so far, and what is new since the last call. */
export interface SectionTextUpdate {
  readonly bookId: string;
  readonly chapter: number;
  readonly section: number;
  readonly attempt: number;
  /** The section's text so far. */
  readonly text: string;
  /** What was added since the last call for this section (after a reset: the whole text). */
  readonly added: string;
  /** The section started over (a crash, a takeover, a failed call): drop what was shown of it. */
  readonly reset: boolean;
}

interface Frame {
  bookId: string;
  chapter: number;
  section: number;
  attempt: number;
  offset: number;
  text: string;
  reset?: boolean;
}

interface Section {
  bookId: string;
  chapter: number;
  section: number;
  attempt: number;
  text: string;
  bytes: number;
  added: string;
  reset: boolean;
}

const encoder = new TextEncoder();
const nextFrame: (run: () => void) => void =
  typeof requestAnimationFrame === 'function' ? (run) => requestAnimationFrame(() => run()) : (run) => setTimeout(run, 16);

/**
 * The client's copy of the live text: applies the server's frames (contiguous offsets, resets),
 * knows where each book is for resuming, and hands the caller merged text at most once per
 * animation frame, so a burst (a resume's merged frame, a fast model) never floods the page.
 */
export class LiveText {
  readonly #sections = new Map<string, Section>();
  /** Per book, where the client is: the resume id's text part. */
  readonly #cursors = new Map<string, { chapter: number; section: number; attempt: number; offset: number }>();
  readonly #changed = new Set<Section>();
  readonly #onText: (update: SectionTextUpdate) => void;
  readonly #onChapterSaved: (bookId: string, chapter: number) => void;
  #scheduled = false;

  constructor(onText: (update: SectionTextUpdate) => void, onChapterSaved: (bookId: string, chapter: number) => void = () => {}) {
    this.#onText = onText;
    this.#onChapterSaved = onChapterSaved;
  }

  /** The resume id's text part for these books, in order: `<chapter>:<section>:<attempt>:<offset>` or `-` each. */
  resumePart(books: readonly string[]): string {
    return books
      .map((bookId) => {
        const c = this.#cursors.get(bookId);
        return c ? `${c.chapter}:${c.section}:${c.attempt}:${c.offset}` : '-';
      })
      .join('.');
  }

  /** A `text` frame; false when it does not follow what the client has (a gap: reconnect to resume). */
  apply(frame: Frame): boolean {
    const key = `${frame.bookId}/${frame.chapter}:${frame.section}`;
    let section = this.#sections.get(key);
    const bytes = encoder.encode(frame.text).length;
    if (frame.reset || !section || section.attempt !== frame.attempt) {
      if (frame.offset !== 0) return false;
      const fresh = section === undefined;
      section ??= { bookId: frame.bookId, chapter: frame.chapter, section: frame.section, attempt: frame.attempt, text: '', bytes: 0, added: '', reset: false };
      section.attempt = frame.attempt;
      section.text = '';
      section.bytes = 0;
      this.#sections.set(key, section);
      this.#cursors.set(frame.bookId, { chapter: frame.chapter, section: frame.section, attempt: frame.attempt, offset: 0 });
      if (!fresh) {
        section.reset = true;
        section.added = '';
        this.#changed.add(section);
        this.#schedule();
      }
    }
    if (frame.offset + bytes <= section.bytes) return true; // already had it
    if (frame.offset !== section.bytes) return false;
    section.text += frame.text;
    section.added += frame.text;
    section.bytes += bytes;
    this.#cursors.set(frame.bookId, { chapter: frame.chapter, section: frame.section, attempt: frame.attempt, offset: section.bytes });
    this.#changed.add(section);
    this.#schedule();
    return true;
  }

  /** A `chapter` frame: the chapter is saved, its text is fetched from the books API. */
  chapterSaved(bookId: string, chapter: number): void {
    this.#cursors.set(bookId, { chapter: chapter + 1, section: 0, attempt: 0, offset: 0 });
    this.#onChapterSaved(bookId, chapter);
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    nextFrame(() => {
      this.#scheduled = false;
      const changed = [...this.#changed];
      this.#changed.clear();
      for (const s of changed) {
        const update: SectionTextUpdate = { bookId: s.bookId, chapter: s.chapter, section: s.section, attempt: s.attempt, text: s.text, added: s.added, reset: s.reset };
        s.added = '';
        s.reset = false;
        this.#onText(update);
      }
    });
  }
}
