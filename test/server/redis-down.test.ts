import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BrokerUnavailableError } from '../../src/broker/broker.js';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { Watch } from '../support/events.js';
import { RedisProcess } from '../support/redis-process.js';
import { until } from '../support/wait.js';
import { bookId, expectError, progressUrl, publish, published } from './http.js';
import { startServer } from '../support/service.js';

let redis: RedisProcess;
let service: Service;
const watches: Watch[] = [];

beforeAll(async () => {
  redis = await RedisProcess.start();
  service = await startServer({ REDIS_URL: redis.url, SNAPSHOT_INTERVAL_MS: '100' });
});

afterEach(async () => {
  for (const watch of watches.splice(0)) watch.close();
  await redis.start();
});

afterAll(async () => {
  await service?.close();
  await redis?.stop();
});

describe('while Redis is down', () => {
  it('refuses publishes at once with 503 and Retry-After, stays healthy, and publishes again once Redis is back', async () => {
    const id = bookId('outage');
    const before = await published(service.url, id, { status: 'GENERATING', generationStep: 'RESEARCH', message: 'before the outage' });
    const w = new Watch(`${progressUrl(service.url, id)}/stream`);
    watches.push(w);
    await w.version(before.version);
    await until(async () => (await service.store.getProgress(id))?.version === before.version, 5_000, 'the state is snapshotted');

    await redis.stop();

    for (let attempt = 0; attempt < 3; attempt++) {
      const started = performance.now();
      const res = await publish(service.url, id, { message: 'during the outage' });
      const elapsed = performance.now() - started;
      expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
      await expectError(res, 503, 'broker_unavailable');
      expect(elapsed).toBeLessThan(2_000);
    }
    await expect(service.tracker.updateProgress(id, { message: 'direct' })).rejects.toBeInstanceOf(BrokerUnavailableError);

    const health = await fetch(`${service.url}/healthz`);
    expect(health.status).toBe(200);

    const polled = await fetch(progressUrl(service.url, id));
    expect(polled.status).toBe(200);
    expect(polled.headers.get('x-progress-source')).toBe('database');
    expect(await polled.json()).toEqual({ success: true, data: before });

    await redis.start();
    let after: BookProgress | undefined;
    await until(
      async () => {
        const res = await publish(service.url, id, { message: 'after the outage' });
        if (res.status !== 200) return false;
        after = ((await res.json()) as { data: BookProgress }).data;
        return true;
      },
      10_000,
      'a publish succeeds after Redis restarts',
    );
    // Redis came back empty; the run and its version count go on, and the open stream gets the update.
    expect(after).toMatchObject({ status: 'GENERATING', generationStep: 'RESEARCH', message: 'after the outage' });
    expect(after?.version).toBeGreaterThan(before.version);
    expect(await w.version(after?.version ?? Infinity, 10_000)).toEqual(after);
  });

  it('answers every bad request with its own 4xx, not 503', async () => {
    await redis.stop();
    await expectError(await publish(service.url, bookId('outage-bad'), { overallProgress: 150 }), 400, 'invalid_progress');
    await expectError(await publish(service.url, bookId('outage-bad'), '{'), 400, 'invalid_json');
    await expectError(await publish(service.url, 'bök', { message: 'x' }), 400, 'invalid_book_id');
  });
});
