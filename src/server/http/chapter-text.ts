import type { TextLog } from '../../broker/text-log.js';
import { MAX_SECTIONS_PER_CHAPTER } from '../../progress/schema.js';
import type { ChapterRecord } from '../../store/books.js';

/** How a chapter's sections are joined, in the live text as in the saved chapter (pipeline.ts). */
const SECTION_SEPARATOR = '\n\n';

/** One section of a chapter as the text log holds it. */
export interface LiveSection {
  readonly section: number;
  readonly attempt: number;
  readonly length: number;
}

/**
 * A chapter's text as `GET /api/books/:id/chapters/:n` answers it: saved (from Postgres, final) or
 * live (the sections the text log holds, joined as the saved chapter joins them). Offsets count
 * UTF-8 bytes of the whole chapter.
 */
export interface ChapterText {
  readonly saved: boolean;
  readonly title: string | null;
  readonly bytes: Buffer;
  /** Live only: each section's attempt and length (an attempt that changed means the text started over). */
  readonly sections: readonly LiveSection[];
}

export function savedChapter(record: ChapterRecord): ChapterText {
  return { saved: true, title: record.title, bytes: Buffer.from(record.content, 'utf8'), sections: [] };
}

/** The chapter being written (or written and not saved yet), or null when the log holds none of it. */
export async function liveChapter(texts: TextLog, bookId: string, chapter: number): Promise<ChapterText | null> {
  const current = await texts.current(bookId);
  const last = current?.chapter === chapter ? current.section : MAX_SECTIONS_PER_CHAPTER;
  const parts: Buffer[] = [];
  const sections: LiveSection[] = [];
  for (let section = 1; section <= last; section++) {
    const held = await texts.read(bookId, chapter, section);
    if (held === null) break;
    if (section > 1) parts.push(Buffer.from(SECTION_SEPARATOR));
    parts.push(Buffer.from(held.text, 'utf8'));
    sections.push({ section, attempt: held.attempt, length: held.length });
  }
  if (sections.length === 0) return null;
  return { saved: false, title: null, bytes: Buffer.concat(parts), sections };
}

/** The ETag of a chapter's answer for one URL (its `from` is in the URL): changes with every append or reset. */
export function chapterTag(chapter: ChapterText): string {
  if (chapter.saved) return `"saved-${chapter.bytes.length}"`;
  return `"live-${chapter.sections.map((s) => `${s.attempt}.${s.length}`).join('-')}"`;
}
