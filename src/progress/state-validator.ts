import { Ajv } from 'ajv';
import { stateJsonSchema } from './json-schema.js';
import { chapterInRange, isStorableText, isTenantText, sectionInRange } from './schema.js';
import type { BookProgress } from './schema.js';

/**
 * BookProgressSchema compiled to code, for the paths that check every message from Redis
 * (10,000 a second under load). zod's safeParse allocates about 3 KB per state; at that rate its
 * garbage alone was half of all young-generation GC work. This allocates nothing.
 *
 * The zod schema stays the one source: the JSON Schema is generated from it, and the rules JSON
 * Schema cannot express are the schema's own functions. A property test holds both validators to
 * the same answers (test/progress/state-validator.test.ts).
 */
const compiled = new Ajv({
  // Unknown fields are dropped, as zod's parse drops them.
  removeAdditional: 'all',
}).compile(stateJsonSchema());

/**
 * Whether `value` (parsed JSON) is a valid state, as BookProgressSchema decides; when it is,
 * the fields the schema does not know are removed from it, in place.
 */
export function isBookProgress(value: unknown): value is BookProgress {
  if (!compiled(value)) return false;
  const state = value as BookProgress;
  return (
    chapterInRange(state) &&
    sectionInRange(state) &&
    isStorableText(state.message) &&
    (state.error === undefined || isStorableText(state.error)) &&
    (state.tenant === undefined || isTenantText(state.tenant))
  );
}
