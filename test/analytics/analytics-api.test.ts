import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Analytics } from '../../src/analytics/queries.js';
import type { EtaAccuracy } from '../../src/analytics/eta-accuracy.js';
import { RedisBroker } from '../../src/broker/redis.js';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { expectError } from '../server/http.js';
import { REDIS_URL, uniquePrefix } from '../support/backends.js';
import { silentLog, startServer } from '../support/service.js';
import { TEST_SECRET, bearer, mintToken } from '../support/tokens.js';
import { until } from '../support/wait.js';
import { simulateRun } from './runs.js';
import type { RunShape } from './runs.js';

const prefix = uniquePrefix();
const NOW = Date.now();
const START = NOW - 2 * 3_600_000;
let service: Service;
let alice: string; // acme
let bob: string; // globex
let admin: string;

type Answer = Analytics & { eta: EtaAccuracy; tenant: string | null };

beforeAll(async () => {
  service = await startServer({ REDIS_KEY_PREFIX: prefix, SNAPSHOT_INTERVAL_MS: '60000', AUTH_JWT_SECRET: TEST_SECRET });
  alice = await mintToken({ sub: 'alice', tenant: 'acme', scope: 'progress:read' });
  bob = await mintToken({ sub: 'bob', tenant: 'globex', scope: 'progress:read' });
  admin = await mintToken({ sub: 'operator', tenant: 'ops', scope: 'admin' });
  // Runs with known durations, written straight into Redis by a worker: acme three completed
  // (steps of 1, 2 and 3 s, sections of 0.5 s) and one failed; globex one completed.
  const runs: Array<[string, RunShape]> = [
    ['acme-1', { chapters: 2, sections: 2, stepMs: 1_000, sectionMs: 500, start: START, tenant: 'acme' }],
    ['acme-2', { chapters: 2, sections: 2, stepMs: 2_000, sectionMs: 500, start: START + 60_000, tenant: 'acme' }],
    ['acme-3', { chapters: 2, sections: 2, stepMs: 3_000, sectionMs: 500, start: START + 120_000, tenant: 'acme' }],
    ['acme-failed', { chapters: 2, sections: 2, stepMs: 1_000, sectionMs: 500, start: START + 180_000, tenant: 'acme', failAtChapter: 2 }],
    ['globex-1', { chapters: 2, sections: 2, stepMs: 1_000, sectionMs: 500, start: START + 240_000, tenant: 'globex' }],
  ];
  const worker = new RedisBroker({ url: REDIS_URL, keyPrefix: prefix, ttlSeconds: 600, log: silentLog, timeoutMs: 2_000 });
  try {
    await worker.ready(5_000);
    for (const [name, shape] of runs) {
      let previous: BookProgress | null = null;
      for (const state of simulateRun(`${name}-${NOW}`, shape)) {
        await worker.commit(state, previous?.version ?? null);
        previous = state;
      }
    }
  } finally {
    await worker.close();
  }
  await until(async () => {
    await service.timelines.flush();
    const res = await fetch(`${service.url}/api/analytics?since=${START - 1}&until=${NOW}`, { headers: bearer(admin) });
    return ((await res.json()) as { data?: Answer }).data?.throughput.buckets.reduce((n, b) => n + b.completed + b.failed, 0) === 5;
  }, 10_000, 'the five runs recorded');
});
afterAll(async () => {
  await service?.close();
});

const url = (query: string) => `${service.url}/api/analytics?since=${START - 1}&until=${NOW}${query}`;
async function read(token: string, query = ''): Promise<Answer> {
  const res = await fetch(url(query), { headers: bearer(token) });
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { data: Answer }).data;
}

describe('GET /api/analytics', () => {
  it('answers a tenant\'s figures, checked against runs with known durations', async () => {
    const data = await read(alice);
    expect(data.tenant).toBe('acme');
    expect(data.runs).toEqual({ started: 4, completed: 3, failed: 1, running: 0, completionRate: 0.75, failureRate: 0.25 });
    // Durations 7, 12 and 17 s: percentile_cont gives 12 s and 16 s.
    expect(data.runDuration).toEqual({ count: 3, p50: 12_000, p90: 16_000 });
    const proofreading = data.steps.find((s) => s.step === 'PROOFREADING');
    expect(proofreading).toEqual({ step: 'PROOFREADING', count: 3, p50: 2_000, p90: 2_800 });
    expect(data.section).toMatchObject({ p50: 500, p90: 500 });
    expect(data.chapter).toMatchObject({ p50: 1_000, p90: 1_000 });
    expect(data.throughput.buckets.reduce((n, b) => n + b.completed, 0)).toBe(3);
    expect(data.throughput.buckets.reduce((n, b) => n + b.failed, 0)).toBe(1);
    expect(data.eta.runs).toBe(3);
    expect(data.eta.checkpoints.map((c) => c.at)).toEqual([0.1, 0.25, 0.5, 0.75]);
    expect(data.eta.checkpoints.every((c) => c.linear !== null && c.linear >= 0)).toBe(true);
  });

  it('lets an admin see every tenant, or filter by one', async () => {
    expect((await read(admin)).runs.started).toBe(5);
    expect((await read(admin, '&tenant=globex')).runs).toMatchObject({ started: 1, completed: 1 });
    expect((await read(bob)).runs).toMatchObject({ started: 1, completed: 1, failed: 0 });
  });

  it('refuses no token, an expired one, a forged one, and another tenant', async () => {
    await expectError(await fetch(url('')), 401, 'unauthorized');
    const expired = await mintToken({ sub: 'alice', tenant: 'acme', scope: 'progress:read' }, { ttlSeconds: -10 });
    await expectError(await fetch(url(''), { headers: bearer(expired) }), 401, 'invalid_token');
    const forged = await mintToken({ sub: 'alice', tenant: 'acme', scope: 'admin' }, { secret: 'another-secret-of-exactly-32-byte' });
    await expectError(await fetch(url(''), { headers: bearer(forged) }), 401, 'invalid_token');
    await expectError(await fetch(url('&tenant=globex'), { headers: bearer(alice) }), 404, 'not_found');
    const limited = await mintToken({ sub: 'alice', tenant: 'acme', scope: 'progress:read', books: ['acme-1'] });
    await expectError(await fetch(url(''), { headers: bearer(limited) }), 404, 'not_found');
  });

  it('refuses a bad window', async () => {
    await expectError(await fetch(`${service.url}/api/analytics?since=10&until=5`, { headers: bearer(admin) }), 400, 'invalid_query');
    await expectError(await fetch(`${service.url}/api/analytics?since=yesterday`, { headers: bearer(admin) }), 400, 'invalid_query');
    await expectError(await fetch(`${service.url}/api/analytics?since=0&until=${NOW}`, { headers: bearer(admin) }), 400, 'invalid_query');
  });
});
