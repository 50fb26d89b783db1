import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import { mayWrite } from '../../../auth/caller.js';
import type { TextLog } from '../../../broker/text-log.js';
import { MAX_CHAPTERS, MAX_SECTIONS_PER_CHAPTER, isStorableText, isTerminal } from '../../../progress/schema.js';
import { Refusal } from '../../../refusal.js';
import type { FindNewest } from '../../delivery/newest-state.js';
import { callerWith } from '../auth.js';
import type { AppEnv } from '../auth.js';
import { parseBookId, readJson } from '../params.js';


/** `POST /api/ai/progress/:bookId/text`: one chunk of a section's live text (docs/live-text.md "Writing"). */
export const TextAppendSchema = z
  .object({
    chapter: z.number().int().min(1).max(MAX_CHAPTERS),
    section: z.number().int().min(1).max(MAX_SECTIONS_PER_CHAPTER),
    offset: z.number().int().min(0),
    text: z.string().refine(isStorableText, 'must not contain NUL or unpaired surrogates'),
    /** Starts the section over first (a new attempt); the offset is then 0. */
    reset: z.boolean().optional(),
    /** The writer's lease epoch, refused once a higher one wrote to the book. */
    fence: z.number().int().min(0).optional(),
  })
  .strict()
  .refine((body) => body.text !== '' || body.reset === true, { message: 'must not be empty (unless reset is true)', path: ['text'] })
  .refine((body) => body.reset !== true || body.offset === 0, { message: 'must be 0 with reset', path: ['offset'] });

export interface TextRoutesOptions {
  texts: TextLog;
  findNewest: FindNewest;
  maxBodyBytes: number;
}

/** `POST /api/ai/progress/:bookId/text`: an outside worker appends live text (docs/live-text.md "Writing"). */
export function textRoutes(options: TextRoutesOptions) {
  const { texts, findNewest } = options;
  const app = new Hono<AppEnv>();

  app.post('/:bookId/text', bodyLimit({ maxSize: options.maxBodyBytes }), async (c) => {
    const caller = callerWith(c, 'progress:write');
    const bookId = parseBookId(c);
    const parsed = TextAppendSchema.safeParse(await readJson(c));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Refusal(400, 'invalid_text', `${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'}`);
    }
    const { chapter, section, offset, text, reset, fence } = parsed.data;
    // Text goes to a book that has progress, of the caller's tenant: another tenant's is answered as a missing one.
    const found = await findNewest(bookId);
    if (!found || !mayWrite(caller, found.state.tenant)) throw new Refusal(404, 'not_found', `no progress for book ${bookId}`);
    // A finished book's text expires with its state (TERMINAL_TTL_SECONDS): an append would keep it for the progress TTL again.
    if (isTerminal(found.state.status)) throw new Refusal(409, 'book_finished', `book ${bookId} is ${found.state.status}: its text takes no more appends`);
    if (reset === true) {
      if ((await texts.beginSection(bookId, chapter, section, fence)) === null) throw fenced(bookId);
      if (text === '') return c.json({ success: true, data: { length: 0 } });
    }
    const result = await texts.append(bookId, { chapter, section, offset }, text, fence);
    if (result.ok) return c.json({ success: true, data: { length: result.length } });
    switch (result.reason) {
      case 'offset_mismatch':
        throw new Refusal(409, 'offset_mismatch', `offset ${offset} is not the length of chapter ${chapter} section ${section} (${result.length} bytes)`, {
          details: { length: result.length },
        });
      case 'too_large':
        throw new Refusal(413, 'text_too_large', `chapter ${chapter} section ${section} would pass MAX_SECTION_TEXT_BYTES (it holds ${result.length} bytes)`, {
          details: { length: result.length },
        });
      case 'fenced':
        throw fenced(bookId);
    }
  });

  return app;
}

function fenced(bookId: string): Refusal {
  return new Refusal(409, 'fenced', `a newer writer holds book ${bookId}: this fence was superseded`);
}
