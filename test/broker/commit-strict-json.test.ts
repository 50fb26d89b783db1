import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMIT } from '../../src/broker/scripts.js';
import { isBookProgress } from '../../src/progress/state-validator.js';
import { REDIS_URL, uniquePrefix } from '../support/backends.js';

const redis = new Redis(REDIS_URL);
afterAll(() => redis.quit());

const head = '{"bookId":"b","status":"GENERATING","generationStep":"CHAPTERS","currentChapter":1,"totalChapters":10,"currentSection":1,"totalSections":3,"overallProgress":33.7,"message":"m","timestamp":1795716056477,"tenant":"acme"';

/** Whether the server could take this JSON at all (JSON.parse, then the schema). */
function serverTakes(json: string): boolean {
  try {
    return isBookProgress(JSON.parse(json));
  } catch {
    return false;
  }
}

/**
 * Redis's cjson reads more than JSON (0x hex numbers, leading zeros, +1, NaN and Infinity
 * in fields it does not check), and the script does not check `stalledSince`. Each state below is
 * committed, the server then ignores it, and the server's own publishes to the book fail with 409
 * after 50 attempts until the key expires.
 */
describe('the commit script refuses what the server cannot read', () => {
  it.each([
    ['a hex count', `${head.replace('"currentChapter":1', '"currentChapter":0x1')},"version":1}`],
    ['a count with a leading zero', `${head.replace('"currentChapter":1', '"currentChapter":01')},"version":1}`],
    ['a count with a plus sign', `${head.replace('"currentChapter":1', '"currentChapter":+1')},"version":1}`],
    ['NaN in an unknown field', `${head},"extra":NaN,"version":1}`],
    ['stalledSince as text', `${head},"stalledSince":"soon","version":1}`],
  ])('%s', async (_name, json) => {
    expect(serverTakes(json)).toBe(false);
    const prefix = uniquePrefix();
    const committed = await redis
      .eval(COMMIT, 2, `${prefix}progress:b`, `${prefix}dirty`, '', json, 60, `${prefix}updates:b`, 'b')
      .then(() => true, () => false);
    await redis.del(`${prefix}progress:b`, `${prefix}dirty`);
    expect(committed).toBe(false);
  });
});
