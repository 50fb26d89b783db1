/**
 * Redis memory per book being written (docs/live-text.md "Memory"): writes chapters of typical
 * sizes through RedisTextLog in token-sized appends, as a generator does, and sums MEMORY USAGE
 * of the book's keys (progress state, fence, text hash, the chapter's section strings).
 * `npx tsx bench/text-memory.ts` (REDIS_URL, default redis://127.0.0.1:6379).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { RedisBroker } from '../src/broker/redis.js';
import { RedisTextLog } from '../src/broker/redis-text.js';
import { ProgressTracker } from '../src/progress/tracker.js';
import { DEFAULT_BACKEND_TIMEOUT_MS } from '../src/config.js';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `booksai-bench-${process.pid}-${randomBytes(4).toString('hex')}:`;
const log = pino({ level: 'silent' });
/** About 4 characters a token; a word-sized chunk (the demo's, and a chat model's stream). */
const CHUNK_BYTES = 6;
const WORD_BYTES = 6;

const cases = [
  { name: '3 sections of 250 words (the OpenAI generator)', sections: 3, words: 250 },
  { name: '3 sections of 1,000 words', sections: 3, words: 1_000 },
  { name: '5 sections of 1,500 words (a long chapter)', sections: 5, words: 1_500 },
];

const broker = new RedisBroker({ timeoutMs: DEFAULT_BACKEND_TIMEOUT_MS, url, keyPrefix: prefix, ttlSeconds: 600, log });
const texts = new RedisTextLog({ broker, keyPrefix: prefix, ttlSeconds: 600, log });
const redis = new Redis(url);
try {
  if (!(await broker.ready(5_000))) throw new Error(`redis at ${url} is not answering`);
  const tracker = new ProgressTracker({ states: broker });
  console.log('| chapter being written | text bytes | state + fence | text hash | section strings | total per book |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const [i, c] of cases.entries()) {
    const bookId = `bench-book-${i}`;
    await tracker.updateProgress(bookId, { status: 'GENERATING', message: 'Writing Chapter 3 of 10...', totalChapters: 10, totalSections: c.sections }, { fence: 1 });
    let textBytes = 0;
    for (let section = 1; section <= c.sections; section++) {
      await texts.beginSection(bookId, 3, section, 1);
      const text = 'x'.repeat(c.words * WORD_BYTES - 1) + ' ';
      let offset = 0;
      while (offset < text.length) {
        const result = await texts.append(bookId, { chapter: 3, section, offset }, text.slice(offset, offset + CHUNK_BYTES), 1);
        if (!result.ok) throw new Error(`append refused: ${result.reason}`);
        offset = result.length;
      }
      textBytes += offset;
    }
    const usage = async (key: string) => Number((await redis.memory('USAGE', key, 'SAMPLES', '0')) ?? 0);
    const state = (await usage(broker.keys.state(bookId))) + (await usage(broker.keys.fence(bookId)));
    const meta = await usage(texts.keys.meta(bookId));
    let sections = 0;
    for (let section = 1; section <= c.sections; section++) sections += await usage(texts.keys.section(bookId, 3, section));
    const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
    console.log(`| ${c.name} | ${kib(textBytes)} | ${kib(state)} | ${kib(meta)} | ${kib(sections)} | ${kib(state + meta + sections)} |`);
  }
} finally {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.quit();
  texts.close();
  await broker.close();
}
