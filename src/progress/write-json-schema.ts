import { writeFileSync } from 'node:fs';
import { stateJsonSchema } from './json-schema.js';

/** `npm run docs:schema`: regenerates docs/state.schema.json from the zod schema. */
writeFileSync(new URL('../../docs/state.schema.json', import.meta.url), `${JSON.stringify(stateJsonSchema(), null, 2)}\n`);
