import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryBroker } from '../../src/broker/memory.js';
import { MemoryTextLog } from '../../src/broker/memory-text.js';
import { RedisBroker } from '../../src/broker/redis.js';
import { RedisTextLog } from '../../src/broker/redis-text.js';
import { COMMIT } from '../../src/broker/scripts.js';
import { DEFAULT_BACKEND_TIMEOUT_MS, DEFAULT_TERMINAL_TTL_SECONDS } from '../../src/config.js';
import { ProgressTracker } from '../../src/progress/tracker.js';
import { REDIS_URL, uniquePrefix } from '../support/backends.js';
import { silentLog } from '../support/service.js';

const RUNNING_TTL = 86_400;
const TERMINAL_TTL = 600;

const redis = new Redis(REDIS_URL);
afterAll(() => redis.quit());

async function withBroker(test: (broker: RedisBroker, prefix: string) => Promise<void>): Promise<void> {
  const prefix = uniquePrefix();
  const broker = new RedisBroker({ url: REDIS_URL, keyPrefix: prefix, ttlSeconds: RUNNING_TTL, terminalTtlSeconds: TERMINAL_TTL, log: silentLog, timeoutMs: DEFAULT_BACKEND_TIMEOUT_MS });
  if (!(await broker.ready(5_000))) throw new Error(`redis at ${REDIS_URL} is not answering`);
  try {
    await test(broker, prefix);
  } finally {
    await broker.close();
  }
}

/** TTL within the few seconds a test takes. */
function near(seconds: number) {
  return expect.toSatisfy((ttl: number) => ttl <= seconds && ttl > seconds - 10, `a TTL near ${seconds}`);
}

describe('the terminal TTL on Redis', () => {
  it('keeps a running book for PROGRESS_TTL_SECONDS, and a finished one (and its fence) for TERMINAL_TTL_SECONDS', async () => {
    await withBroker(async (broker, prefix) => {
      const tracker = new ProgressTracker({ states: broker });
      await tracker.updateProgress('done', { status: 'GENERATING', totalChapters: 3, message: 'writing' }, { fence: 7 });
      await tracker.updateProgress('failed', { status: 'GENERATING', message: 'writing' });
      await tracker.updateProgress('running', { status: 'GENERATING', message: 'writing' });
      expect(await redis.ttl(`${prefix}progress:done`)).toEqual(near(RUNNING_TTL));
      expect(await redis.ttl(`${prefix}fence:done`)).toEqual(near(RUNNING_TTL));

      await tracker.markComplete('done', 3, { fence: 7 });
      await tracker.markError('failed', 'the model refused');
      expect(await redis.ttl(`${prefix}progress:done`)).toEqual(near(TERMINAL_TTL));
      expect(await redis.ttl(`${prefix}fence:done`)).toEqual(near(TERMINAL_TTL));
      expect(await redis.ttl(`${prefix}progress:failed`)).toEqual(near(TERMINAL_TTL));
      expect(await redis.ttl(`${prefix}progress:running`)).toEqual(near(RUNNING_TTL));

      // A new run of a finished book is running again: the running TTL is back.
      await tracker.updateProgress('done', { status: 'GENERATING', message: 'again' }, { fence: 8 });
      expect(await redis.ttl(`${prefix}progress:done`)).toEqual(near(RUNNING_TTL));
    });
  });

  it("cuts a finished book's live text to the terminal TTL, keeping a saved chapter's shorter grace", async () => {
    await withBroker(async (broker, prefix) => {
      const texts = new RedisTextLog({ broker, keyPrefix: prefix, ttlSeconds: RUNNING_TTL, graceSeconds: 30, log: silentLog });
      try {
        const tracker = new ProgressTracker({ states: broker });
        await tracker.updateProgress('book', { status: 'GENERATING', totalChapters: 2, message: 'writing' });
        for (const chapter of [1, 2]) {
          await texts.beginSection('book', chapter, 1);
          await texts.append('book', { chapter, section: 1, offset: 0 }, `chapter ${chapter}`);
        }
        await texts.chapterSaved('book', 1, 1);
        expect(await redis.ttl(`${prefix}text:book:2:1`)).toEqual(near(RUNNING_TTL));
        expect(await redis.ttl(`${prefix}textmeta:book`)).toEqual(near(RUNNING_TTL));

        await tracker.markError('book', 'the model refused');
        expect(await redis.ttl(`${prefix}text:book:1:1`)).toEqual(near(30));
        expect(await redis.ttl(`${prefix}text:book:2:1`)).toEqual(near(TERMINAL_TTL));
        expect(await redis.ttl(`${prefix}textmeta:book`)).toEqual(near(TERMINAL_TTL));
        expect(await texts.read('book', 2, 1)).toMatchObject({ text: 'chapter 2' });
      } finally {
        texts.close();
      }
    });
  });
});

describe("an outside publisher's terminal state", () => {
  const state = (status: string, version: number) =>
    JSON.stringify({
      bookId: 'b',
      status,
      generationStep: status === 'COMPLETE' ? 'COMPLETE' : 'CHAPTERS',
      currentChapter: 1,
      totalChapters: 1,
      currentSection: 1,
      totalSections: 1,
      overallProgress: status === 'COMPLETE' ? 100 : 50,
      message: status,
      timestamp: 1795716056477,
      version,
    });

  it('gets the default terminal TTL with the five arguments of one Redis, and the one it passes as ARGV[9]', async () => {
    const prefix = uniquePrefix();
    const commit = (json: string, expected: string, ...more: Array<string | number>) =>
      redis.eval(COMMIT, 2, `${prefix}progress:b`, `${prefix}dirty`, expected, json, RUNNING_TTL, `${prefix}updates:b`, 'b', ...more);
    expect(await commit(state('GENERATING', 1), '')).toBe(1);
    expect(await redis.ttl(`${prefix}progress:b`)).toEqual(near(RUNNING_TTL));
    expect(await commit(state('COMPLETE', 2), '1')).toBe(1);
    expect(await redis.ttl(`${prefix}progress:b`)).toEqual(near(DEFAULT_TERMINAL_TTL_SECONDS));

    // As the Python publisher passes it: no fence, PUBLISH, no feed, the terminal TTL.
    expect(await commit(state('GENERATING', 3), '2', '', 'PUBLISH', '', 120)).toBe(1);
    expect(await redis.ttl(`${prefix}progress:b`)).toEqual(near(RUNNING_TTL));
    expect(await commit(state('ERROR', 4), '3', '', 'PUBLISH', '', 120)).toBe(1);
    expect(await redis.ttl(`${prefix}progress:b`)).toEqual(near(120));
    await redis.del(`${prefix}progress:b`, `${prefix}dirty`);
  });
});

describe('the terminal TTL in memory', () => {
  it('drops a finished book (and its live text) after the terminal TTL, a running one after the progress TTL', async () => {
    let now = 1_000_000;
    const finished: Array<[string, number]> = [];
    const texts: MemoryTextLog = new MemoryTextLog({ ttlSeconds: RUNNING_TTL, fenceOf: () => 0, now: () => now });
    const broker = new MemoryBroker({
      ttlSeconds: RUNNING_TTL,
      terminalTtlSeconds: TERMINAL_TTL,
      now: () => now,
      onFinished: (bookId, expiresAt) => {
        finished.push([bookId, expiresAt]);
        texts.bookFinished(bookId, expiresAt);
      },
    });
    try {
      const tracker = new ProgressTracker({ states: broker });
      await tracker.updateProgress('done', { status: 'GENERATING', totalChapters: 1, message: 'writing' });
      await tracker.updateProgress('running', { status: 'GENERATING', message: 'writing' });
      await texts.beginSection('done', 1, 1);
      await texts.append('done', { chapter: 1, section: 1, offset: 0 }, 'text');
      await tracker.markComplete('done', 1);
      expect(finished).toEqual([['done', now + TERMINAL_TTL * 1000]]);

      now += TERMINAL_TTL * 1000 - 1;
      expect(await broker.get('done')).toMatchObject({ status: 'COMPLETE' });
      expect(await texts.read('done', 1, 1)).toMatchObject({ text: 'text' });
      now += 1;
      expect(await broker.get('done')).toBeNull();
      expect(await texts.read('done', 1, 1)).toBeNull();
      expect(await broker.get('running')).toMatchObject({ status: 'GENERATING' });
      now += (RUNNING_TTL - TERMINAL_TTL) * 1000;
      expect(await broker.get('running')).toBeNull();
    } finally {
      await broker.close();
      texts.close();
    }
  });
});
