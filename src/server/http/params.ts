import type { Context } from 'hono';
import { BookIdSchema } from '../../progress/schema.js';
import { Refusal } from '../../refusal.js';
import { parseCursor } from '../delivery/text-feed.js';
import type { TextCursor } from '../delivery/text-feed.js';

/** The `:bookId` route parameter, or a 400 naming the rule. */
export function parseBookId(c: Context): string {
  const parsed = BookIdSchema.safeParse(c.req.param('bookId') ?? '');
  if (!parsed.success) throw new Refusal(400, 'invalid_book_id', 'bookId must be 1-128 characters of A-Z, a-z, 0-9, "_" or "-"');
  return parsed.data;
}

/** The request body as JSON, or a 400 invalid_json. */
export async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Refusal(400, 'invalid_json', 'request body must be valid JSON');
  }
}

/** `?books=a,b,c`: distinct ids, at most `max`. */
export function parseBookList(raw: string, max: number): string[] {
  const ids = [...new Set(raw.split(',').filter((id) => id !== ''))];
  if (ids.length === 0) throw new Refusal(400, 'invalid_books', 'books must list at least one bookId, comma-separated');
  if (ids.length > max) throw new Refusal(400, 'too_many_books', `a stream carries at most ${max} books; got ${ids.length}`);
  for (const id of ids) {
    if (!BookIdSchema.safeParse(id).success) throw new Refusal(400, 'invalid_book_id', 'each bookId must be 1-128 characters of A-Z, a-z, 0-9, "_" or "-"');
  }
  return ids;
}

/** What a client has from a stream's Last-Event-ID: versions, and (streams with text) where it is in each book's text. */
export interface StreamResume {
  readonly versions: Map<string, number>;
  readonly texts: Map<string, TextCursor | null>;
}

/**
 * An SSE stream's Last-Event-ID: `12` for one book, `12.7.0` for a list (list order); with text,
 * `;` and one text position per book in the same order (`12;3:2:1:455`, `12.7;3:2:1:455.-`).
 */
export function parseStreamResume(raw: string | undefined, books: readonly string[]): StreamResume {
  const [progress, text] = raw === undefined ? [undefined, undefined] : raw.split(';', 2);
  const texts = new Map<string, TextCursor | null>();
  if (text !== undefined) {
    const parts = text.split('.');
    const cursors = parts.map(parseCursor);
    if (parts.length !== books.length || cursors.some((c) => c === undefined)) {
      throw new Refusal(400, 'invalid_last_event_id', 'Last-Event-ID must be the id of an event this stream sent: versions joined by ".", then ";" and text positions');
    }
    books.forEach((bookId, i) => texts.set(bookId, cursors[i] ?? null));
  }
  return { versions: parseLastEventId(progress, books), texts };
}

/** Versions the client has, from an SSE stream's Last-Event-ID: `12` for one book, `12.7.0` for a list (list order). */
export function parseLastEventId(raw: string | undefined, books: readonly string[]): Map<string, number> {
  const known = new Map<string, number>();
  if (raw === undefined || raw === '') return known;
  const parts = raw.split('.');
  if (parts.length !== books.length || !parts.every((p) => /^\d{1,15}$/.test(p))) {
    throw new Refusal(400, 'invalid_last_event_id', 'Last-Event-ID must be the id of an event this stream sent: versions joined by "."');
  }
  books.forEach((bookId, i) => known.set(bookId, Number(parts[i])));
  return known;
}
