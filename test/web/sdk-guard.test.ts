import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BookProgressSchema, STATUSES, STEPS } from '../../src/progress/schema.js';
import type { BookProgress as SchemaBookProgress } from '../../src/progress/schema.js';
import { parseBookProgress } from '../../web/sdk/guard.js';
import type { BookProgress } from '../../web/sdk/guard.js';

// The client's hand-kept type is the schema's, both ways.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameType: Same<BookProgress, SchemaBookProgress> = true;

const valid = {
  bookId: 'book-1',
  status: 'GENERATING',
  generationStep: 'CHAPTERS',
  currentChapter: 2,
  totalChapters: 5,
  currentSection: 1,
  totalSections: 3,
  overallProgress: 41.5,
  message: 'Writing',
  timestamp: 1_700_000_000_000,
  version: 7,
};

/** Values each field may take in the fuzz: valid ones, edge cases and wrong types. */
const anyValue = fc.oneof(
  fc.constantFrom(...STATUSES, ...STEPS, 'DONE', '', 'a\0b', '\ud800', 'x'.repeat(2_001), 'ok'),
  fc.integer({ min: -2, max: 100_002 }),
  fc.constantFrom(0, 1, 100, 100.5, -0.5, 1.5, Number.NaN, 1e20, null, true, [], {}),
);

describe('the client guard', () => {
  it('has the schema type', () => {
    expect(sameType).toBe(true);
  });

  it('agrees with BookProgressSchema on valid states, edited fields and dropped unknown fields', () => {
    expect(parseBookProgress({ ...valid, extra: 1 })).toEqual(BookProgressSchema.parse({ ...valid, extra: 1 }));
    const keys = [...Object.keys(valid), 'error', 'startTime', 'estimatedEndTime', 'estimatedEndTimeLate', 'stalledSince', 'tenant'];
    fc.assert(
      fc.property(fc.constantFrom(...keys), anyValue, fc.boolean(), (key, value, drop) => {
        const raw: Record<string, unknown> = { ...valid };
        if (drop) delete raw[key];
        else raw[key] = value;
        const schema = BookProgressSchema.safeParse(raw);
        const guard = parseBookProgress(raw);
        expect(guard).toEqual(schema.success ? schema.data : null);
      }),
      { numRuns: 3_000 },
    );
    for (const raw of [null, 'x', 1, [], { ...valid, currentChapter: 6 }, { ...valid, bookId: 'a/b' }, { ...valid, tenant: 'a\nb' }]) {
      expect(parseBookProgress(raw)).toBeNull();
    }
  });
});
