/** The benchmark's books: their ids, their progress states as JSON, and seeding them in Redis. */
import type { Redis } from 'ioredis';
import { redisKeys } from '../../src/broker/keys.js';

export const REDIS_URL = 'redis://127.0.0.1:6379';
/** TTL of seeded and published states: longer than any run. */
export const STATE_TTL_SECONDS = 3_600;

/** A set of books named `<prefix><index>` for index in [first, first + count). */
export interface BookRange {
  prefix: string;
  first: number;
  count: number;
}

export function bookId(range: Pick<BookRange, 'prefix'>, index: number): string {
  return `${range.prefix}${index}`;
}

/**
 * A valid BookProgress as JSON, stamped with the publish time (`timestamp`, epoch ms): the
 * receiver's latency is its clock minus that stamp. Built by hand because it is on the
 * publisher's hot path.
 */
export function stateJson(id: string, version: number, timestamp: number, tenant?: string, startTime = timestamp - 60_000): string {
  return (
    `{"bookId":"${id}","status":"GENERATING","generationStep":"CHAPTERS","currentChapter":3,` +
    `"totalChapters":12,"currentSection":1,"totalSections":4,"overallProgress":${version % 100},` +
    `"message":"Writing chapter 3 of 12","timestamp":${timestamp},"startTime":${startTime},` +
    `${tenant === undefined ? '' : `"tenant":"${tenant}",`}"version":${version}}`
  );
}

const SEED_BATCH = 1_000;

/** Stores version 1 of every book of `range` under `keyPrefix` (of `tenant`, when given), without marking them dirty. */
export async function seedBooks(redis: Redis, keyPrefix: string, range: BookRange, tenant?: string): Promise<void> {
  const keys = redisKeys(keyPrefix);
  const now = Date.now();
  for (let start = 0; start < range.count; start += SEED_BATCH) {
    const pipeline = redis.pipeline();
    for (let i = start; i < Math.min(range.count, start + SEED_BATCH); i++) {
      const id = bookId(range, range.first + i);
      pipeline.set(keys.state(id), stateJson(id, 1, now, tenant), 'EX', STATE_TTL_SECONDS);
    }
    await pipeline.exec();
  }
}

/** Deletes every key starting with `prefix` (bounded: a few million keys at most). */
export async function deleteKeys(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  for (let round = 0; round < 10_000; round++) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1_000);
    if (keys.length > 0) deleted += await redis.unlink(...keys);
    cursor = next;
    if (cursor === '0') break;
  }
  return deleted;
}
