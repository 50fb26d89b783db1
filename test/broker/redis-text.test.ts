import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisBroker } from '../../src/broker/redis.js';
import { REDIS_URL, uniquePrefix } from '../support/backends.js';
import { silentLog } from '../support/service.js';
import { until } from '../support/wait.js';
import { textLogContract } from './text-contract.js';
import { fencedState, textLogOn } from './redis-text-subject.js';
import { DEFAULT_BACKEND_TIMEOUT_MS } from '../../src/config.js';

async function singleBroker(keyPrefix: string): Promise<RedisBroker> {
  const broker = new RedisBroker({ timeoutMs: DEFAULT_BACKEND_TIMEOUT_MS, url: REDIS_URL, keyPrefix, ttlSeconds: 600, log: silentLog });
  if (!(await broker.ready(5_000))) throw new Error(`redis at ${REDIS_URL} is not answering`);
  return broker;
}

textLogContract('redis', async ({ maxSectionBytes }) => {
  const prefix = uniquePrefix();
  return textLogOn(await singleBroker(prefix), prefix, maxSectionBytes);
});

describe('Redis live-text wire format', () => {
  const redis = new Redis(REDIS_URL);
  afterAll(() => redis.quit());

  it('keeps <prefix>text:<bookId>:<chapter>:<section> and <prefix>textmeta:<bookId> with the TTL, announces on <prefix>texts:<bookId>', async () => {
    const prefix = uniquePrefix();
    const under = textLogOn(await singleBroker(prefix), prefix, 1024);
    const subscriber = new Redis(REDIS_URL);
    try {
      const messages: string[] = [];
      subscriber.on('message', (_channel, message: string) => messages.push(message));
      await subscriber.subscribe(`${prefix}texts:wire`);
      await under.text.beginSection('wire', 2, 3, 4);
      await under.text.append('wire', { chapter: 2, section: 3, offset: 0 }, 'Hello "world"', 4);
      await under.text.beginSection('wire', 2, 3, 4);
      expect(await redis.get(`${prefix}text:wire:2:3`)).toBe('');
      expect(await redis.hgetall(`${prefix}textmeta:wire`)).toEqual({ '2:3': '2', current: '2:3' });
      expect(await redis.ttl(`${prefix}text:wire:2:3`)).toBeGreaterThan(500);
      expect(await redis.ttl(`${prefix}textmeta:wire`)).toBeGreaterThan(500);
      expect(await redis.get(`${prefix}fence:wire`)).toBe('4');
      await until(() => messages.length === 2, 5_000, 'two announcements');
      expect(messages).toEqual([
        '{"bookId":"wire","chapter":2,"section":3,"attempt":1,"offset":0,"text":"Hello \\"world\\""}',
        '{"bookId":"wire","chapter":2,"section":3,"attempt":2,"offset":0,"text":"","reset":true}',
      ]);
      await under.text.chapterSaved('wire', 2, 3);
      expect(await redis.ttl(`${prefix}text:wire:2:3`)).toBeLessThanOrEqual(30);
    } finally {
      await subscriber.quit();
      await under.close();
    }
  });

  it('leaves progress every-book listeners alone: text takes its own pattern on the shared subscriber', async () => {
    const prefix = uniquePrefix();
    const broker = await singleBroker(prefix);
    const under = textLogOn(broker, prefix, 1024);
    try {
      const states: string[] = [];
      const chunks: string[] = [];
      const offStates = await broker.subscribeAll((state) => states.push(state.bookId), () => {});
      const offChunks = await under.text.subscribeAllText((chunk) => chunks.push(chunk.text));
      await under.text.beginSection('shared', 1, 1);
      await under.text.append('shared', { chapter: 1, section: 1, offset: 0 }, 'words');
      await broker.commit(fencedState('shared'), null);
      await until(() => states.length === 1 && chunks.length === 1, 5_000, 'one state and one chunk');
      expect(states).toEqual(['shared']);
      expect(chunks).toEqual(['words']);
      offStates();
      offChunks();
    } finally {
      await under.close();
    }
  });
});
