import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DelayProxy } from '../../chaos/delay-proxy.js';
import type { Service } from '../../src/service.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { createBook } from '../support/books.js';
import { startTestService } from '../support/service.js';

/**
 * BACKEND_TIMEOUT_MS bounds a whole request: GET /api/books/:id makes several database calls
 * in a row, each answered within the timeout on a slow (not hung) network, together not.
 */
const TIMEOUT_MS = 1_000;
/** Each way: every query answers well within TIMEOUT_MS, the request as a whole (several in a row) takes about 1.8 s without one deadline. */
const DELAY_MS = 150;

let database: TestDatabase;
let proxy: DelayProxy;
let service: Service;

beforeAll(async () => {
  database = await createTestDatabase();
  const url = new URL(database.url);
  proxy = await DelayProxy.start({ host: url.hostname, port: Number(url.port || 5432) });
  service = await startTestService({ DATABASE_URL: proxy.url(database.url), BACKEND_TIMEOUT_MS: String(TIMEOUT_MS), MAX_GENERATIONS: '0' });
}, 60_000);

afterAll(async () => {
  await service?.close();
  await proxy?.close();
  await database?.drop();
});

async function timedGet(path: string): Promise<{ status: number; ms: number; code?: string }> {
  const started = performance.now();
  const res = await fetch(`${service.url}${path}`);
  const body = (await res.json()) as { error?: { code: string } };
  return { status: res.status, ms: performance.now() - started, code: body.error?.code };
}

describe('one deadline per request', () => {
  it('GET /api/books/:id against a slow database answers within BACKEND_TIMEOUT_MS (503 database_unavailable), and 200 once it is fast again', async () => {
    const { bookId } = await createBook(service.url, 'A slow read', 2);
    expect((await timedGet(`/api/books/${bookId}`)).status).toBe(200);

    proxy.delayMs = DELAY_MS;
    const slow = await timedGet(`/api/books/${bookId}`);
    expect(slow.ms, 'answered within the one deadline, not one per call').toBeLessThan(TIMEOUT_MS + 300);
    expect(slow).toMatchObject({ status: 503, code: 'database_unavailable' });

    proxy.delayMs = 0;
    expect((await timedGet(`/api/books/${bookId}`)).status).toBe(200);
  }, 60_000);
});
