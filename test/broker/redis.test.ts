import { Redis } from 'ioredis';
import { DEFAULT_BACKEND_TIMEOUT_MS } from '../../src/config.js';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisBroker } from '../../src/broker/redis.js';
import { ProgressTracker } from '../../src/progress/tracker.js';
import { REDIS_URL, uniquePrefix } from '../support/backends.js';
import { silentLog } from '../support/service.js';
import { brokerContract } from './contract.js';

async function connectedBroker(keyPrefix: string, ttlSeconds = 60): Promise<RedisBroker> {
  const broker = new RedisBroker({ url: REDIS_URL, keyPrefix, ttlSeconds, log: silentLog, timeoutMs: DEFAULT_BACKEND_TIMEOUT_MS });
  if (!(await broker.ready(5_000))) throw new Error(`redis at ${REDIS_URL} is not answering`);
  return broker;
}

/** Runs `test` with a broker under a fresh key prefix, and closes it whatever happens. */
async function withBroker(test: (broker: RedisBroker, prefix: string) => Promise<void>): Promise<void> {
  const prefix = uniquePrefix();
  const broker = await connectedBroker(prefix);
  try {
    await test(broker, prefix);
  } finally {
    await broker.close();
  }
}

brokerContract('redis', () => connectedBroker(uniquePrefix()));

describe('Redis wire format', () => {
  const redis = new Redis(REDIS_URL);
  afterAll(() => redis.quit());

  it('keeps the JSON state at <prefix>progress:<bookId> with the TTL, and publishes it on <prefix>updates:<bookId>', async () => {
    const prefix = uniquePrefix();
    const broker = await connectedBroker(prefix, 86_400);
    const subscriber = new Redis(REDIS_URL);
    try {
      await subscriber.subscribe(`${prefix}updates:wire-book`);
      const published = new Promise<string>((resolve) => subscriber.once('message', (_channel, message: string) => resolve(message)));
      const tracker = new ProgressTracker({ states: broker });
      const saved = await tracker.updateProgress('wire-book', { message: 'Writing Chapter 2 of 10...' });

      const raw = await redis.get(`${prefix}progress:wire-book`);
      expect(JSON.parse(raw!)).toEqual(saved);
      expect(JSON.parse(await published)).toEqual(saved);
      const ttl = await redis.ttl(`${prefix}progress:wire-book`);
      expect(ttl).toBeGreaterThan(86_000);
      expect(await redis.sismember(`${prefix}dirty`, 'wire-book')).toBe(1);
      expect(await redis.keys(`${prefix}progress:*`)).toEqual([`${prefix}progress:wire-book`]);
    } finally {
      await subscriber.quit();
      await broker.close();
    }
  });

  it('uses one subscriber connection for any number of watched books, and unsubscribes the last', async () => {
    await withBroker(async (broker, prefix) => {
      const stops = await Promise.all(Array.from({ length: 50 }, (_, i) => broker.subscribe(`many-${i}`, () => {})));
      const channels = (await redis.pubsub('CHANNELS', `${prefix}updates:*`)) as string[];
      expect(channels).toHaveLength(50);
      const clients = (await redis.client('LIST')) as string;
      const subscribers = clients.split('\n').filter((line) => line.includes('name=booksai-progress-sub') && / sub=50 /.test(line));
      expect(subscribers).toHaveLength(1);
      for (const stop of stops) stop();
      await expect
        .poll(async () => ((await redis.pubsub('CHANNELS', `${prefix}updates:*`)) as string[]).length, { timeout: 5_000 })
        .toBe(0);
    });
  });

  it('reads the held version of a state written by another publisher in any field order or spacing', async () => {
    await withBroker(async (broker, prefix) => {
      const tracker = new ProgressTracker({ states: broker });
      const first = await tracker.updateProgress('foreign', { message: 'ours' });
      const { version: _ours, ...rest } = first;
      const reordered = { version: 7, ...rest, message: 'theirs' };
      await redis.set(`${prefix}progress:foreign`, JSON.stringify(reordered, null, 2));
      expect(JSON.stringify(reordered).endsWith('"version":7}')).toBe(false);
      expect(await tracker.updateProgress('foreign', { message: 'ours again' })).toMatchObject({ version: 8, message: 'ours again' });

      // As Python's json.dumps writes it: version last, a space after each separator.
      const fields = Object.entries({ ...rest, version: 41 }).map(([key, value]) => `${JSON.stringify(key)}: ${JSON.stringify(value)}`);
      await redis.set(`${prefix}progress:foreign`, `{${fields.join(', ')}}`);
      expect(await tracker.updateProgress('foreign', { message: 'and again' })).toMatchObject({ version: 42, message: 'and again' });
    });
  });

  it('passes on no field the schema does not know, from a state a foreign publisher published', async () => {
    await withBroker(async (broker, prefix) => {
      const received: Array<{ state: unknown; json: string }> = [];
      const stop = await broker.subscribe('extra', (state, json) => received.push({ state, json }));
      const valid = { bookId: 'extra', status: 'GENERATING', generationStep: 'OUTLINE', currentChapter: 0, totalChapters: 3, currentSection: 0, totalSections: 2, overallProgress: 20, message: 'm', timestamp: 1, version: 1 };
      await redis.publish(`${prefix}updates:extra`, JSON.stringify({ ...valid, internalNote: 'not for browsers' }));
      await redis.publish(`${prefix}updates:extra`, JSON.stringify({ ...valid, version: 2 }, null, 1));
      await expect.poll(() => received.length, { timeout: 5_000 }).toBe(2);
      stop();
      expect(received[0]!.state).toEqual(valid);
      expect(JSON.parse(received[0]!.json)).toEqual(valid);
      expect(JSON.parse(received[1]!.json)).toEqual({ ...valid, version: 2 });
    });
  });

  it('ignores a malformed state written by a foreign publisher instead of crashing', async () => {
    await withBroker(async (broker, prefix) => {
      await redis.set(`${prefix}progress:bad`, '{not json');
      expect(await broker.get('bad')).toBeNull();
      await redis.set(`${prefix}progress:bad2`, JSON.stringify({ bookId: 'bad2', version: 'x' }));
      expect(await broker.get('bad2')).toBeNull();
    });
  });
});
