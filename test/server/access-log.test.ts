import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { ServerProcess } from '../support/server-process.js';
import { until } from '../support/wait.js';

let database: TestDatabase;
let direct: ServerProcess;
let proxied: ServerProcess;

beforeAll(async () => {
  database = await createTestDatabase();
  const env = { REDIS_URL, REDIS_KEY_PREFIX: uniquePrefix(), DATABASE_URL: database.url, LOG_LEVEL: 'debug' };
  direct = await ServerProcess.start(env);
  proxied = await ServerProcess.start({ ...env, TRUST_PROXY: 'true' });
});
afterAll(async () => {
  await Promise.all([direct?.stop(), proxied?.stop()]);
  await database?.drop();
});

/** The request lines a server logged for `path`. */
function requestLines(server: ServerProcess, path: string): Array<{ client: string; path: string; status: number }> {
  return server.output
    .split('\n')
    .filter((line) => line.includes('"msg":"request"'))
    .map((line) => JSON.parse(line) as { client: string; path: string; status: number })
    .filter((line) => line.path === path);
}

describe('client address in logs', () => {
  const forwarded = { 'X-Forwarded-For': '198.51.100.7, 203.0.113.9' };

  it('is the socket address by default, whatever X-Forwarded-For says', async () => {
    const before = requestLines(direct, '/healthz').length; // ServerProcess.start's own polls
    expect((await fetch(`${direct.url}/healthz?token=secret-in-query`, { headers: forwarded })).status).toBe(200);
    await until(() => requestLines(direct, '/healthz').length > before, 5_000, 'the request line');
    expect(requestLines(direct, '/healthz').at(-1)).toMatchObject({ client: '127.0.0.1', status: 200 });
    expect(direct.output).not.toContain('secret-in-query');
  });

  it('is the address the proxy appended to X-Forwarded-For with TRUST_PROXY=true', async () => {
    const before = requestLines(proxied, '/healthz').length;
    expect((await fetch(`${proxied.url}/healthz`, { headers: forwarded })).status).toBe(200);
    await until(() => requestLines(proxied, '/healthz').length > before, 5_000, 'the request line');
    expect(requestLines(proxied, '/healthz').at(-1)).toMatchObject({ client: '203.0.113.9', status: 200 });
    // Without the header (not through the proxy) it falls back to the socket.
    await fetch(`${proxied.url}/metrics`);
    await until(() => requestLines(proxied, '/metrics').length > 0, 5_000, 'the request line');
    expect(requestLines(proxied, '/metrics')[0]?.client).toBe('127.0.0.1');
  });
});
