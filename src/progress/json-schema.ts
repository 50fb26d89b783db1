import { z } from 'zod';
import { BookProgressSchema } from './schema.js';

/** No registry: the schema's `id` (for the OpenAPI document's components) would wrap it in `definitions`. */
const STANDALONE = z.registry<Record<string, unknown>>();

/**
 * BookProgressSchema as JSON Schema (draft 7), for validators in any language:
 * docs/state.schema.json is this (`npm run docs:schema` writes it; a test keeps it equal).
 * JSON Schema cannot say current ≤ total, nor forbid NUL or lone surrogates in text: the
 * description names them, and the commit script checks them.
 */
export function stateJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(BookProgressSchema, { target: 'draft-7', io: 'input', metadata: STANDALONE }),
    title: 'BookProgress',
    description:
      'The latest state of one book (docs/protocol.md). Also: currentChapter <= totalChapters, currentSection <= totalSections, ' +
      'no NUL or unpaired surrogate in message and error, no control character in tenant, and version is the last field of the JSON.',
  };
}
