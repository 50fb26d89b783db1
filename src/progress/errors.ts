import type { z } from 'zod';
import { Refusal } from '../refusal.js';

/** A value broke the progress schema: 400 `invalid_progress`, the message naming the field and the rule. */
export function invalidProgress(error: z.ZodError, subject: string): Refusal {
  const issue = error.issues[0];
  const where = issue === undefined ? null : issue.path.length > 0 ? issue.path.join('.') : subject;
  return new Refusal(400, 'invalid_progress', issue === undefined ? `invalid ${subject}` : `${where}: ${issue.message}`);
}

/** A write to a book of another tenant: refused exactly as a missing book (404), and nothing changes. */
export function foreignBook(bookId: string): Refusal {
  return new Refusal(404, 'not_found', `no progress for book ${bookId}`);
}

/** Concurrent publishers kept winning the race for one book: 409 `conflict`, worth retrying in a second. */
export function conflict(message: string): Refusal {
  return new Refusal(409, 'conflict', message, { retryAfterSeconds: 1 });
}
