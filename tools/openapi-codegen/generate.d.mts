/** The TypeScript types of an OpenAPI document (openapi-typescript), as the text of a `.d.ts` file. */
export function generateTypes(document: unknown): Promise<string>;
