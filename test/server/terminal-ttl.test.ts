import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { REDIS_URL, uniquePrefix } from '../support/backends.js';
import { serverForFile } from '../support/service.js';
import { until } from '../support/wait.js';

const prefix = uniquePrefix();
const server = serverForFile({ TERMINAL_TTL_SECONDS: '1', REDIS_KEY_PREFIX: prefix });
const redis = new Redis(REDIS_URL);
afterAll(() => redis.quit());

async function poll(id: string): Promise<{ status: string; version: number; source: string | null }> {
  const res = await fetch(`${server.url}/api/ai/progress/${id}`);
  expect(res.status).toBe(200);
  const { data } = (await res.json()) as { data: { status: string; version: number } };
  return { status: data.status, version: data.version, source: res.headers.get('x-progress-source') };
}

describe('a finished book after TERMINAL_TTL_SECONDS', () => {
  it('is read from Postgres once its Redis key expired; a running book stays in Redis', async () => {
    const { tracker, store } = server.service;
    const id = `finished-${Date.now()}`;
    const running = `running-${Date.now()}`;
    await tracker.updateProgress(running, { status: 'GENERATING', message: 'writing' });
    await tracker.updateProgress(id, { status: 'GENERATING', totalChapters: 2, message: 'writing' });
    const done = await tracker.markComplete(id, 2);
    const key = `${prefix}progress:${id}`;
    expect(JSON.parse((await redis.get(key))!)).toMatchObject({ status: 'COMPLETE', version: done.version });
    // Not polled before it expires: this process's hub would follow the book and answer polls from memory.
    await until(async () => (await store.getProgress(id))?.version === done.version, 10_000, 'the final state in Postgres');

    await until(async () => (await redis.exists(key)) === 0, 5_000, 'the finished key to expire');
    expect(await poll(id)).toEqual({ status: 'COMPLETE', version: done.version, source: 'database' });
    expect(await poll(running)).toMatchObject({ status: 'GENERATING', source: 'redis' });
    expect(await redis.ttl(`${prefix}progress:${running}`)).toBeGreaterThan(86_000);
  });
});
