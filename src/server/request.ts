import type { Context } from 'hono';
import { BookIdSchema } from '../progress/schema.js';
import { ApiError } from './errors.js';

/** The `:bookId` route parameter, or a 400 naming the rule. */
export function parseBookId(c: Context): string {
  const parsed = BookIdSchema.safeParse(c.req.param('bookId') ?? '');
  if (!parsed.success) throw new ApiError(400, 'invalid_book_id', 'bookId must be 1-128 characters of A-Z, a-z, 0-9, "_" or "-"');
  return parsed.data;
}

/** The request body as JSON, or a 400 invalid_json. */
export async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(400, 'invalid_json', 'request body must be valid JSON');
  }
}
