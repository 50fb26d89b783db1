import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisBroker } from '../../src/broker/redis.js';
import { RedisTextLog } from '../../src/broker/redis-text.js';
import { APPEND_TEXT, BEGIN_SECTION } from '../../src/broker/scripts.js';
import type { TextChunk } from '../../src/broker/text-log.js';
import { REDIS_URL, uniquePrefix } from '../support/backends.js';
import { silentLog } from '../support/service.js';
import { until } from '../support/wait.js';
import { DEFAULT_BACKEND_TIMEOUT_MS } from '../../src/config.js';

/** docs/protocol.md "Live text": its scripts are the server's, and called as it says they write what the server reads. */
const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
const section = doc.slice(doc.indexOf('\n## Live text'));
const luaBlocks = [...section.matchAll(/```lua\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());

describe('docs/protocol.md "Live text"', () => {
  const redis = new Redis(REDIS_URL);
  afterAll(() => redis.quit());

  it('prints BEGIN_SECTION and APPEND_TEXT exactly as the server runs them', () => {
    expect(luaBlocks).toEqual([BEGIN_SECTION.trim(), APPEND_TEXT.trim()]);
  });

  it('an outside worker running them with the documented keys and arguments writes text the server reads and announces', async () => {
    const prefix = uniquePrefix();
    const broker = new RedisBroker({ timeoutMs: DEFAULT_BACKEND_TIMEOUT_MS, url: REDIS_URL, keyPrefix: prefix, ttlSeconds: 600, log: silentLog });
    const texts = new RedisTextLog({ broker, keyPrefix: prefix, ttlSeconds: 600, log: silentLog });
    try {
      expect(await broker.ready(5_000)).toBe(true);
      const seen: TextChunk[] = [];
      const stop = await texts.subscribeText('worker-book', (chunk) => seen.push(chunk));
      const keys = [`${prefix}text:worker-book:1:2`, `${prefix}textmeta:worker-book`, `${prefix}fence:worker-book`];
      const common = (chapter: number, sectionNumber: number) => [chapter, sectionNumber, '', 86400, `${prefix}texts:worker-book`, 'worker-book', 'PUBLISH', ''];
      expect(await redis.eval(APPEND_TEXT, 3, ...keys, ...common(1, 2), 0, 'Dear ', 262144)).toEqual([1, 5]);
      expect(await redis.eval(APPEND_TEXT, 3, ...keys, ...common(1, 2), 5, 'reader', 262144)).toEqual([1, 11]);
      expect(await redis.eval(APPEND_TEXT, 3, ...keys, ...common(1, 2), 5, 'reader', 262144)).toEqual([0, 11]);
      expect(await redis.eval(APPEND_TEXT, 3, ...keys, ...common(1, 2), 11, '!'.repeat(10), 16)).toEqual([2, 11]);
      expect(await texts.read('worker-book', 1, 2)).toEqual({ attempt: 1, text: 'Dear reader', length: 11 });
      expect(await texts.current('worker-book')).toEqual({ chapter: 1, section: 2, attempt: 1 });
      expect(await redis.eval(BEGIN_SECTION, 3, ...keys, ...common(1, 2))).toEqual([1, 2]);
      await until(() => seen.length === 3, 5_000, 'two chunks and a reset');
      stop();
      expect(seen.map((c) => [c.attempt, c.offset, c.text, c.reset ?? false])).toEqual([
        [1, 0, 'Dear ', false],
        [1, 5, 'reader', false],
        [2, 0, '', true],
      ]);
    } finally {
      texts.close();
      await broker.close();
    }
  });
});
