import { writeFileSync } from 'node:fs';
import { generateTypes } from 'booksai-openapi-codegen';
import { openApiDocument } from '../../src/server/http/openapi.js';

/**
 * `npm run docs:openapi`: docs/openapi.json (the document GET /api/openapi.json serves, without
 * BASE_PATH) and examples/openapi-client/schema.d.ts (its types, for openapi-fetch), regenerated;
 * test/examples/openapi-client.test.ts keeps both equal to what the code generates.
 */
const document = openApiDocument();
writeFileSync(new URL('../../docs/openapi.json', import.meta.url), `${JSON.stringify(document, null, 2)}\n`);
writeFileSync(new URL('./schema.d.ts', import.meta.url), await generateTypes(document));
