import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';
import { expect } from 'vitest';

interface Operation {
  responses: Record<string, { headers?: Record<string, unknown>; content?: Record<string, { schema?: unknown }> }>;
}
type Document = { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, unknown> } };

/** `~` and `/` escaped (RFC 6901), then percent-encoded for a URI fragment. */
const pointer = (...segments: string[]) => `openapi.json#/${segments.map((s) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/')}`;

/**
 * Checks real answers against the OpenAPI document the server serves: the status is one the
 * operation lists, every header listed for it is there, and a JSON body matches the listed
 * schema (ajv, JSON Schema 2020-12: OpenAPI 3.1's dialect). Remembers which operations and
 * statuses were checked, so a test can insist that every operation was.
 */
export class ApiContract {
  readonly document: Document;
  readonly checked = new Set<string>();
  readonly #ajv = new Ajv2020({ strict: false, allErrors: true });
  readonly #compiled = new Map<string, ValidateFunction>();

  constructor(document: unknown) {
    this.document = document as Document;
    this.#ajv.addSchema(document as object, 'openapi.json');
  }

  /** The validator of the schema at `segments` of the document. */
  validator(...segments: string[]): ValidateFunction {
    const ref = pointer(...segments);
    let validate = this.#compiled.get(ref);
    if (!validate) {
      validate = this.#ajv.getSchema(ref);
      if (!validate) throw new Error(`no schema at ${ref}`);
      this.#compiled.set(ref, validate);
    }
    return validate;
  }

  /** Asserts `value` matches components/schemas/`name`. */
  expectSchema(name: string, value: unknown): void {
    const validate = this.validator('components', 'schemas', name);
    expect(validate(value), `${name}: ${this.#ajv.errorsText(validate.errors)} in ${JSON.stringify(value).slice(0, 500)}`).toBe(true);
  }

  /** Asserts `res` is documented for `method` `path` (the document's template, e.g. `/api/books/{bookId}`); returns its body (parsed when JSON). */
  async expectDocumented(res: Response, method: string, path: string, options: { body?: boolean } = {}): Promise<unknown> {
    const operation = this.document.paths[path]?.[method];
    expect(operation, `${method} ${path} in the document`).toBeDefined();
    const documented = operation!.responses[String(res.status)];
    const text = options.body === false ? '' : await res.text();
    expect(documented, `${method.toUpperCase()} ${path} answered ${res.status}, which the document does not list: ${text.slice(0, 300)}`).toBeDefined();
    for (const header of Object.keys(documented!.headers ?? {})) {
      expect(res.headers.get(header), `${method.toUpperCase()} ${path} ${res.status}: header ${header}`).not.toBeNull();
    }
    this.checked.add(`${method} ${path} ${res.status}`);
    const json = documented!.content?.['application/json'];
    if (!json || options.body === false) return text;
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = JSON.parse(text) as unknown;
    const validate = this.validator('paths', path, method, 'responses', String(res.status), 'content', 'application/json', 'schema');
    expect(validate(body), `${method.toUpperCase()} ${path} ${res.status}: ${this.#ajv.errorsText(validate.errors)} in ${text.slice(0, 500)}`).toBe(true);
    return body;
  }

  /** Every `method path` of the document that no check has seen. */
  unchecked(): string[] {
    const seen = new Set([...this.checked].map((entry) => entry.split(' ').slice(0, 2).join(' ')));
    return Object.entries(this.document.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method} ${path}`)).filter((op) => !seen.has(op));
  }
}
