import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BookProgressSchema, STATUSES, STEPS } from '../../src/progress/schema.js';
import { isBookProgress } from '../../src/progress/state-validator.js';

const count = fc.integer({ min: 0, max: 100_000 });
const epochMs = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const text = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !s.includes('\0'));

/** A state the schema accepts. */
const validState = fc
  .record(
    {
      bookId: fc.stringMatching(/^[A-Za-z0-9_-]{1,128}$/),
      status: fc.constantFrom(...STATUSES),
      generationStep: fc.constantFrom(...STEPS),
      totalChapters: count,
      totalSections: count,
      overallProgress: fc.double({ min: 0, max: 100, noNaN: true }),
      message: text,
      error: text,
      startTime: epochMs,
      estimatedEndTime: epochMs,
      tenant: fc.string({ minLength: 1, maxLength: 30 }).filter((t) => !/[\u0000-\u001f\u007f]/.test(t) && t.isWellFormed()),
      timestamp: epochMs,
      version: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    },
    { requiredKeys: ['bookId', 'status', 'generationStep', 'totalChapters', 'totalSections', 'overallProgress', 'message', 'timestamp', 'version'] },
  )
  .chain((s) =>
    fc.record({ currentChapter: fc.integer({ min: 0, max: s.totalChapters }), currentSection: fc.integer({ min: 0, max: s.totalSections }) }).map((c) => ({ ...s, ...c })),
  );

/** Values that break some rule of some field. */
const badValue = fc.oneof(
  fc.constant(null),
  fc.constant(-1),
  fc.constant(1.5),
  fc.constant(100_001),
  fc.constant(Number.MAX_SAFE_INTEGER + 2),
  fc.constant(''),
  fc.constant('DONE'),
  fc.constant('a\0b'),
  fc.constant('lone \uD800 surrogate'),
  fc.constant('x'.repeat(2_001)),
  fc.constant('x'.repeat(8_001)),
  // 2,002 UTF-16 code units, 1,001 characters: both count characters, so both accept it as a message.
  fc.constant('😀'.repeat(1_001)),
  fc.constant('bad id!'),
  fc.constant('tab\there'),
  fc.constant('x'.repeat(257)),
  fc.constant([]),
  fc.constant({}),
  fc.constant(true),
  fc.double(),
  fc.string({ unit: 'binary', maxLength: 10 }),
  fc.integer({ min: -10, max: 200_000 }),
);

const FIELDS = ['bookId', 'status', 'generationStep', 'currentChapter', 'totalChapters', 'currentSection', 'totalSections', 'overallProgress', 'message', 'error', 'startTime', 'estimatedEndTime', 'tenant', 'timestamp', 'version'];

type Mutation =
  | { kind: 'set'; field: string; value: unknown }
  | { kind: 'delete'; field: string }
  | { kind: 'extra'; field: string; value: unknown }
  | { kind: 'exceed'; part: 'Chapter' | 'Section' };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), field: fc.constantFrom(...FIELDS), value: badValue }),
  fc.record({ kind: fc.constant('delete' as const), field: fc.constantFrom(...FIELDS) }),
  fc.record({ kind: fc.constant('extra' as const), field: fc.constantFrom('foo', 'overalProgress', 'title', '__proto__x'), value: badValue }),
  fc.record({ kind: fc.constant('exceed' as const), part: fc.constantFrom('Chapter' as const, 'Section' as const) }),
);

/** A valid state with up to three mutations: most end up invalid, some stay valid. */
const candidate = fc.tuple(validState, fc.array(mutation, { maxLength: 3 })).map(([state, mutations]) => {
  const value: Record<string, unknown> = { ...state };
  for (const m of mutations) {
    if (m.kind === 'delete') delete value[m.field];
    else if (m.kind === 'exceed') value[`current${m.part}`] = Number(value[`total${m.part}s`]) + 1;
    else value[m.field] = m.value;
  }
  return value;
});

describe('isBookProgress, the compiled validator of the Redis hot path', () => {
  it('gives the answer BookProgressSchema gives, and drops unknown fields as it does', () => {
    fc.assert(
      fc.property(fc.oneof({ arbitrary: candidate, weight: 9 }, { arbitrary: fc.jsonValue(), weight: 1 }), (input) => {
        // Both see what JSON.parse would give them; the compiled validator edits its copy in place.
        const json = JSON.stringify(input) ?? 'null';
        const expected = BookProgressSchema.safeParse(JSON.parse(json));
        const value: unknown = JSON.parse(json);
        expect(isBookProgress(value)).toBe(expected.success);
        if (expected.success) expect(value).toEqual(expected.data);
      }),
      { numRuns: 5_000 },
    );
  });

  it('accepts every valid state as it is', () => {
    fc.assert(
      fc.property(validState, (state) => {
        const value: unknown = JSON.parse(JSON.stringify(state));
        expect(isBookProgress(value)).toBe(true);
        expect(value).toEqual(state);
      }),
    );
  });

  it('refuses what only the schema refinements catch', () => {
    const state = { bookId: 'b', status: 'GENERATING', generationStep: 'CHAPTERS', currentChapter: 3, totalChapters: 12, currentSection: 0, totalSections: 4, overallProgress: 10, message: 'ok', timestamp: 1, version: 1 };
    expect(isBookProgress({ ...state })).toBe(true);
    expect(isBookProgress({ ...state, currentChapter: 13 })).toBe(false);
    expect(isBookProgress({ ...state, currentSection: 5 })).toBe(false);
    expect(isBookProgress({ ...state, message: 'nul \0 inside' })).toBe(false);
    expect(isBookProgress({ ...state, error: 'lone \uDC00' })).toBe(false);
  });

  it('drops a "__proto__" field of the JSON as zod does, without touching any prototype', () => {
    const json = JSON.stringify({ bookId: 'b', status: 'GENERATING', generationStep: 'CHAPTERS', currentChapter: 0, totalChapters: 1, currentSection: 0, totalSections: 0, overallProgress: 0, message: '', timestamp: 1, version: 1 }).replace('{', '{"__proto__":{"polluted":true},');
    const value: unknown = JSON.parse(json);
    expect(Object.keys(value as object)).toContain('__proto__');
    expect(isBookProgress(value)).toBe(true);
    expect(value).toEqual(BookProgressSchema.parse(JSON.parse(json)));
    expect(Object.keys(value as object)).not.toContain('__proto__');
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
  });
});
