import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { stateJsonSchema } from '../../src/progress/json-schema.js';

const file = new URL('../../docs/state.schema.json', import.meta.url);

describe('docs/state.schema.json', () => {
  it('is the zod schema, as `npm run docs:schema` writes it', () => {
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(stateJsonSchema());
  });

  it('accepts the state of docs/protocol.md and refuses one without a version', () => {
    const validate = new Ajv().compile(JSON.parse(readFileSync(file, 'utf8')));
    const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
    const example = JSON.parse(/## The state\n\n```json\n([\s\S]*?)```/.exec(doc)![1]!);
    expect(validate(example)).toBe(true);
    const { version: _, ...unversioned } = example;
    expect(validate(unversioned)).toBe(false);
  });
});
