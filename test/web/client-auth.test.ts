import { EventSource } from 'eventsource';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ANY_WRITER } from '../../src/progress/tracker.js';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { watch } from '../../web/client.js';
import type { ConnectionState } from '../../web/client.js';
import { startServer } from '../support/service.js';
import { TEST_SECRET, mintToken } from '../support/tokens.js';
import { pace, until } from '../support/wait.js';

let service: Service;
beforeAll(async () => {
  service = await startServer({ AUTH_JWT_SECRET: TEST_SECRET });
});
afterAll(async () => {
  await service.close();
});

const writer = { tenant: 'acme', anyTenant: false };

describe('web client with tokens', () => {
  it('gets a fresh token when the stream says it expired, and resumes: no gap, no duplicate', async () => {
    const id = `client-auth-${Date.now()}`;
    await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'first' }, { writer });
    const tokens: string[] = [];
    const refreshes: boolean[] = [];
    // Each token lives 2 s: over the run the server ends the stream at least twice.
    const getToken = async ({ refresh }: { refresh: boolean }) => {
      refreshes.push(refresh);
      const token = await mintToken({ sub: 'alice', tenant: 'acme' }, { ttlSeconds: 2 });
      tokens.push(token);
      return token;
    };
    const seen: BookProgress[] = [];
    const states: ConnectionState[] = [];
    const watching = watch([id], (p) => seen.push(p), { baseUrl: service.url, EventSource, getToken, onConnection: (s) => states.push(s) });
    try {
      await until(() => seen.length === 1, 5_000, 'the first state');
      const deadline = Date.now() + 5_000;
      let published = 1;
      while (Date.now() < deadline) {
        await service.tracker.updateProgress(id, { message: `update ${published++}` }, { writer: ANY_WRITER });
        await pace(50);
      }
      const last = await service.tracker.markComplete(id, 0);
      await until(() => states.at(-1) === 'closed', 10_000, 'the client to reach COMPLETE');
      expect(tokens.length).toBeGreaterThanOrEqual(3);
      // The first was asked for as any; the later ones because the stream said the token expired.
      expect(refreshes[0]).toBe(false);
      expect(refreshes.slice(1).every((r) => r)).toBe(true);
      const versions = seen.map((s) => s.version);
      expect(versions).toEqual([...new Set(versions)].sort((a, b) => a - b));
      expect(seen.at(-1)).toEqual(last);
      expect(seen.every((s) => s.tenant === 'acme')).toBe(true);
      expect(states).not.toContain('offline');
    } finally {
      watching.close();
    }
  });

  it('polls with the token as a Bearer header when it has no EventSource', async () => {
    const id = `client-poll-${Date.now()}`;
    await service.tracker.updateProgress(id, { status: 'GENERATING' }, { writer });
    const token = await mintToken({ sub: 'alice', tenant: 'acme' });
    const seen: BookProgress[] = [];
    const watching = watch([id], (p) => seen.push(p), { baseUrl: service.url, token, pollIntervalMs: 100 });
    try {
      await until(() => seen.length === 1, 5_000, 'the polled state');
      await service.tracker.markComplete(id, 0);
      await until(() => seen.at(-1)?.status === 'COMPLETE', 5_000, 'the polled COMPLETE');
    } finally {
      watching.close();
    }
  });
});
