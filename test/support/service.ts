import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import type { Config } from '../../src/config.js';
import { loadConfig } from '../../src/config.js';
import { startService } from '../../src/service.js';
import type { Service } from '../../src/service.js';
import { REDIS_URL, createTestDatabase, uniquePrefix } from './backends.js';

export const silentLog = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/**
 * A configuration for a server on an ephemeral port, with the real shared Redis under a
 * unique prefix unless `env` says otherwise. `DATABASE_URL` unset means a PGlite in a temp folder.
 */
export function testConfig(env: Record<string, string | undefined> = {}): Config {
  return loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    REDIS_URL,
    REDIS_KEY_PREFIX: uniquePrefix(),
    DATA_DIR: mkdtempSync(join(tmpdir(), 'booksai-test-')),
    LOG_LEVEL: 'silent',
    // Sections at once: tests pace books with DEMO_STEP_MS, not with the writing pace.
    DEMO_TOKENS_PER_SECOND: '1000000000',
    // In-process servers share their event loop with the test runner (and PGlite starts): its
    // stalls are the harness's, not the server's. Overload is tested on a process of its own.
    OVERLOAD_LOOP_DELAY_MS: '0',
    ...env,
  });
}

/** Starts a real server; the caller closes it in afterEach/afterAll. */
export function startTestService(env: Record<string, string | undefined> = {}): Promise<Service> {
  return startService(testConfig(env), silentLog);
}

/**
 * A real server on an ephemeral port, with the shared Redis under a unique prefix and a fresh
 * database on the shared Postgres (it starts in milliseconds, where PGlite takes seconds).
 * close() stops the server, then drops the database.
 */
export async function startServer(env: Record<string, string | undefined> = {}): Promise<Service> {
  const database = await createTestDatabase();
  let service: Service;
  try {
    service = await startTestService({ DATABASE_URL: database.url, ...env });
  } catch (error) {
    await database.drop();
    throw error;
  }
  return {
    ...service,
    close: async () => {
      await service.close();
      await database.drop();
    },
  };
}

/** One server, as `startServer(env)` gives, for every test of a file: started before the first, closed after the last. */
export function serverForFile(env: Record<string, string | undefined> = {}): { readonly service: Service; readonly url: string } {
  let service: Service | undefined;
  beforeAll(async () => {
    service = await startServer(env);
  });
  afterAll(async () => {
    await service?.close();
  });
  const started = (): Service => {
    if (!service) throw new Error('the file\'s server is read before its beforeAll ran');
    return service;
  };
  return {
    get service() {
      return started();
    },
    get url() {
      return started().url;
    },
  };
}
