import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { RedisProcess } from '../support/redis-process.js';
import { startServer } from '../support/service.js';
import { Redis } from 'ioredis';
import { Watch } from '../support/events.js';
import { until } from '../support/wait.js';

const HEARTBEAT_MS = 200;
let redis: RedisProcess;
let service: Service;

beforeAll(async () => {
  redis = await RedisProcess.start();
  service = await startServer({ REDIS_URL: redis.url, HEARTBEAT_MS: String(HEARTBEAT_MS) });
});
afterAll(async () => {
  await service?.close();
  await redis?.stop();
});

/** Reads a stream's raw text as it arrives; `comments()` counts SSE comment lines (heartbeats). */
async function openRaw(url: string) {
  const controller = new AbortController();
  const res = await fetch(url, { signal: controller.signal });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += decoder.decode(value, { stream: true });
      }
    } catch {
      // aborted by the test
    }
  })();
  return {
    comments: () => text.split('\n').filter((line) => line.startsWith(':')).length,
    close: () => controller.abort(),
  };
}

describe('heartbeats', () => {
  it('reach every idle stream, per-book and multiplexed, within every HEARTBEAT_MS', async () => {
    const single = await openRaw(`${service.url}/api/ai/progress/idle-book/stream`);
    const multi = await openRaw(`${service.url}/api/ai/stream?books=idle-a,idle-b`);
    const started = Date.now();
    await until(() => single.comments() >= 3 && multi.comments() >= 3, 10 * HEARTBEAT_MS + 5_000, 'three heartbeats on each stream');
    // One per 0.8 × HEARTBEAT_MS at most (plus one for timer slack), so a busy server is not flooding idle clients.
    const visits = (Date.now() - started) / (0.8 * HEARTBEAT_MS);
    expect(single.comments()).toBeLessThanOrEqual(Math.ceil(visits) + 1);
    single.close();
    multi.close();
  });

  it('are left out on a stream that carries events, and come back when it falls idle', async () => {
    const busy = await openRaw(`${service.url}/api/ai/progress/busy-book/stream`);
    const idle = await openRaw(`${service.url}/api/ai/progress/idle-neighbour/stream`);
    // Events every few ms while the idle stream, opened at the same time, hears four heartbeats.
    while (idle.comments() < 4) await service.tracker.updateProgress('busy-book', { message: `at ${Date.now()}` });
    // One is allowed: an event-loop stall longer than the quiet window lets one through.
    expect(busy.comments()).toBeLessThanOrEqual(1);
    const before = busy.comments();
    await until(() => busy.comments() > before, 10 * HEARTBEAT_MS + 5_000, 'a heartbeat once the stream is idle');
    busy.close();
    idle.close();
  });

  it('keep a stream open while Redis is down', async () => {
    const stream = await openRaw(`${service.url}/api/ai/progress/through-outage/stream`);
    await redis.stop();
    const before = stream.comments();
    await until(() => stream.comments() >= before + 3, 10 * HEARTBEAT_MS + 5_000, 'heartbeats during the outage');
    expect(service.broker.isLive()).toBe(false);
    await redis.start();
    // The next test starts from a server that is back on Redis.
    await until(() => service.broker.isLive(), 10_000, 'the server to resubscribe once Redis is back');
    stream.close();
  });

  it('end every-book streams with a short retry after Redis reconnects, so lists resync what they missed', async () => {
    const watch = new Watch(`${service.url}/api/ai/stream`);
    let opens = 0;
    watch.source.addEventListener('open', () => opens++);
    await until(() => opens >= 1, 5_000, 'the every-book stream to open');
    expect(opens).toBe(1);
    const admin = new Redis(redis.url);
    try {
      await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub'); // the server's subscriber drops and reconnects
      const missed = await service.tracker.updateProgress(`resync-${Date.now()}`, { message: 'maybe missed' });
      await until(() => opens >= 2, 10_000, 'the list stream to reconnect after the gap');
      await watch.next((s) => s.bookId === missed.bookId && s.version === missed.version, 5_000, 'the state published around the gap');
    } finally {
      admin.disconnect();
      watch.close();
    }
  });
});
