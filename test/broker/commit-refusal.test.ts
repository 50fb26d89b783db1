import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMIT } from '../../src/broker/scripts.js';
import { isBookProgress } from '../../src/progress/state-validator.js';
import { REDIS_URL, uniquePrefix } from '../support/backends.js';

const redis = new Redis(REDIS_URL);
afterAll(() => redis.quit());

const valid = {
  bookId: 'b',
  status: 'GENERATING',
  generationStep: 'CHAPTERS',
  currentChapter: 2,
  totalChapters: 10,
  currentSection: 1,
  totalSections: 3,
  overallProgress: 33.7,
  message: 'Writing Chapter 2 of 10...',
  timestamp: 1795716056477,
  tenant: 'acme',
  version: 1,
};

const { version: _version, ...unversioned } = valid;

/** Runs the commit script as an outside publisher on one Redis does (two keys, five arguments). */
async function commit(prefix: string, json: string, expected = ''): Promise<unknown> {
  return redis.eval(COMMIT, 2, `${prefix}progress:b`, `${prefix}dirty`, expected, json, 60, `${prefix}updates:b`, 'b');
}

async function refusal(json: string, expected = ''): Promise<string | null> {
  const prefix = uniquePrefix();
  try {
    await commit(prefix, json, expected);
    return null;
  } catch (error) {
    expect(await redis.exists(`${prefix}progress:b`, `${prefix}dirty`)).toBe(0);
    return (error as Error).message;
  }
}

describe('the commit script refuses a state the server would ignore', () => {
  const withField = (field: string, value: unknown) => {
    const { version, ...rest } = { ...valid, [field]: value };
    return JSON.stringify({ ...rest, version });
  };
  it.each([
    ['currentChapter above totalChapters', JSON.stringify({ ...valid, currentChapter: 3, totalChapters: 0, version: 1 }), 'currentChapter must not exceed totalChapters'],
    ['currentSection above totalSections', JSON.stringify({ ...valid, currentSection: 4, version: 1 }), 'currentSection must not exceed totalSections'],
    ['an unknown status', withField('status', 'DONE'), 'status must be one of'],
    ['an unknown step', withField('generationStep', 'WRITING'), 'generationStep must be one of'],
    ['a fractional count', withField('totalChapters', 2.5), 'totalChapters must be an integer'],
    ['a negative count', withField('currentSection', -1), 'currentSection must be an integer'],
    ['a count as text', withField('totalChapters', '10'), 'totalChapters must be an integer'],
    ['progress above 100', withField('overallProgress', 100.5), 'overallProgress must be a number'],
    ['a long message', withField('message', 'é'.repeat(2_001)), 'message must be a string of at most 2000'],
    ['a NUL in the message', withField('message', 'a\u0000b'), 'message must not contain NUL'],
    ['an error that is not text', withField('error', null), 'error must be a string'],
    ['a control character in the tenant', withField('tenant', 'ac\nme'), 'tenant must be'],
    ['an empty tenant', withField('tenant', ''), 'tenant must be'],
    ['a lone surrogate', withField('message', '\ud800'), 'the state is not a JSON object'],
    ['another book\'s id', withField('bookId', 'c'), 'bookId must be the id of the book'],
    ['no timestamp', JSON.stringify({ ...valid, timestamp: undefined }), 'timestamp must be an integer'],
    ['version 0', withField('version', 0), 'version must be an integer from 1'],
    ['version not last', JSON.stringify({ version: 1, ...unversioned }), 'version must be the last field'],
    ['not JSON', '{"bookId":', 'the state is not a JSON object'],
  ])('%s', async (_name, json, reason) => {
    expect(await refusal(json)).toMatch(new RegExp(`^INVALID_STATE ${reason.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });

  it('refuses a version not above the held one, and takes the next', async () => {
    const prefix = uniquePrefix();
    expect(await commit(prefix, JSON.stringify({ ...valid, version: 5 }))).toBe(1);
    await expect(commit(prefix, JSON.stringify({ ...valid, version: 5 }), '5')).rejects.toThrow('INVALID_STATE version must be above the held version 5');
    expect(await commit(prefix, JSON.stringify({ ...valid, version: 6 }), '5')).toBe(1);
    // Python's json.dumps spacing, with unknown fields (the server drops them): accepted.
    const spaced = JSON.stringify({ ...unversioned, extra: { a: 1 }, version: 7 }).replaceAll(',', ', ').replaceAll(':', ': ');
    expect(await commit(prefix, spaced, '6')).toBe(1);
  });

  it('accepts exactly the states the server accepts (as far as JSON tells)', async () => {
    const prefix = uniquePrefix();
    const count = fc.oneof(fc.integer({ min: -1, max: 100_001 }), fc.constantFrom(0, 1, 2.5, '3', null));
    const state = fc.record(
      {
        bookId: fc.constant('b'),
        status: fc.constantFrom('PLANNING', 'GENERATING', 'COMPLETE', 'ERROR', 'DONE'),
        generationStep: fc.constantFrom('PLANNING', 'CHAPTERS', 'COMPLETE', 'chapters'),
        currentChapter: count,
        totalChapters: count,
        currentSection: count,
        totalSections: count,
        overallProgress: fc.oneof(fc.double({ min: -1, max: 101, noNaN: true }), fc.constant('50')),
        message: fc.oneof(fc.string({ maxLength: 20 }), fc.constant('x'.repeat(2_001)), fc.constant(1)),
        error: fc.string({ maxLength: 5 }),
        timestamp: fc.oneof(fc.integer({ min: -1, max: 2 ** 45 }), fc.constant(1.5)),
        startTime: fc.integer({ min: 0, max: 2 ** 45 }),
        tenant: fc.oneof(fc.string({ minLength: 0, maxLength: 4 }), fc.constant('x'.repeat(257))),
        version: fc.oneof(fc.integer({ min: 0, max: 1_000 }), fc.constant(2.5)),
      },
      { requiredKeys: ['bookId', 'version'] },
    );
    await fc.assert(
      fc.asyncProperty(state, async (s) => {
        const { version, ...rest } = s;
        const json = JSON.stringify({ ...rest, version });
        await redis.del(`${prefix}progress:b`);
        const accepted = await commit(prefix, json).then(
          () => true,
          (error: Error) => (error.message.startsWith('INVALID_STATE') ? false : Promise.reject(error)),
        );
        expect(accepted).toBe(isBookProgress(JSON.parse(json)));
      }),
      { numRuns: 300 },
    );
    await redis.del(`${prefix}progress:b`, `${prefix}dirty`);
  });
});
