import { describe, expect, it } from 'vitest';
import { serverForFile } from '../support/service.js';
import { bookId, publish } from './http.js';

/** The shared Redis has no replica: REDIS_WAIT_REPLICAS=1 can never be met there. */
const server = serverForFile({ REDIS_WAIT_REPLICAS: '1', BACKEND_TIMEOUT_MS: '400' });

describe('REDIS_WAIT_REPLICAS on a Redis without enough replicas', () => {
  it('answers a publish 503 not_replicated with Retry-After within BACKEND_TIMEOUT_MS, never 200', async () => {
    const id = bookId('unreplicated');
    const started = performance.now();
    const res = await publish(server.url, id, { status: 'GENERATING', generationStep: 'OUTLINE', message: 'outlining' });
    const ms = performance.now() - started;
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('not_replicated');
    expect(body.error.message).toMatch(/0 of the 1 replicas/);
    // WAIT is bounded by 3/4 of the timeout: the answer comes in about 300 ms.
    expect(ms).toBeLessThan(400 + 300);
  });
});
