import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { ServerProcess } from '../support/server-process.js';
import { until } from '../support/wait.js';

// Found by the chaos campaign (CHAOS_SEED=2496269751, single): a server restarted while Postgres
// was cut exited at once ("DATABASE_URL: cannot open …: read ECONNRESET"), and stayed down.
let database: TestDatabase;
let proxy: FaultProxy;
const servers: ServerProcess[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  proxy = await FaultProxy.start(database.url);
});
afterAll(async () => {
  for (const server of servers) if (server.running) await server.stop('SIGKILL');
  proxy?.heal();
  await proxy?.close();
  await database?.drop();
});

describe('start-up during a Postgres outage', () => {
  it('waits out a Postgres that resets its connections, and starts once it heals', async () => {
    proxy.cut();
    const starting = ServerProcess.start({ REDIS_URL, REDIS_KEY_PREFIX: uniquePrefix(), DATABASE_URL: proxy.url(database.url) });
    starting.then((server) => servers.push(server), () => undefined);
    // It tried, was reset, and tried again: still running, not exited.
    await until(() => proxy.refused >= 2, 20_000, 'the server to try Postgres twice');
    proxy.heal();
    const server = await starting;
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const res = await fetch(`${server.url}/api/ai/progress/startup-outage-1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ status: 'GENERATING', message: 'after the outage' }),
    });
    expect(res.status).toBe(200);
  }, 60_000);
});
