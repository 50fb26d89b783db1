import type { Logger } from 'pino';
import { BookProgressSchema } from '../progress/schema.js';
import type { BookProgress } from '../progress/schema.js';
import { isBookProgress } from '../progress/state-validator.js';

/** A state read from Redis and its JSON, ready to hand to listeners. */
export interface DecodedState {
  state: BookProgress;
  json: string;
}

/** Parses a state from Redis; a foreign publisher's malformed value is logged and ignored (null). */
export function parseState(raw: string, where: string, log: Logger): BookProgress | null {
  return validate(raw, where, log)?.state ?? null;
}

/**
 * A message's state and its JSON. The JSON is the message itself when it holds exactly the
 * state's fields (as every state a server commits does), which spares serializing it again.
 */
export function decodeState(raw: string, where: string, log: Logger): DecodedState | null {
  const valid = validate(raw, where, log);
  if (valid === null) return null;
  const { state, fieldCount } = valid;
  // The schema drops unknown fields; raw would carry them on, so serialize the state instead.
  return { state, json: fieldCount === countFields(state) ? raw : JSON.stringify(state) };
}

function validate(raw: string, where: string, log: Logger): { state: BookProgress; fieldCount: number } | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    log.warn({ where }, 'ignoring non-JSON progress state in redis');
    return null;
  }
  const fieldCount = typeof parsed === 'object' && parsed !== null ? countFields(parsed) : 0;
  if (isBookProgress(parsed)) return { state: parsed, fieldCount };
  // Only an invalid state pays for zod, for a message that says what is wrong.
  log.warn({ where, issue: BookProgressSchema.safeParse(parsed).error?.issues[0]?.message }, 'ignoring invalid progress state in redis');
  return null;
}

/** An object's own enumerable fields, counted without building the array Object.keys would: this runs for every message. */
function countFields(value: object): number {
  let count = 0;
  for (const key in value) if (Object.hasOwn(value, key)) count++;
  return count;
}
