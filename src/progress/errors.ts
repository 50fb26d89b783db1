import type { z } from 'zod';

/** A value broke the progress schema; the message names the field and the rule. */
export class ValidationError extends Error {
  override readonly name = 'ValidationError';

  static fromZod(error: z.ZodError, subject: string): ValidationError {
    const issue = error.issues[0];
    if (!issue) return new ValidationError(`invalid ${subject}`);
    const where = issue.path.length > 0 ? issue.path.join('.') : subject;
    return new ValidationError(`${where}: ${issue.message}`);
  }
}

/** A write to a book of another tenant: answered exactly as a missing book, and nothing changes. */
export class ForeignBookError extends Error {
  override readonly name = 'ForeignBookError';
}
