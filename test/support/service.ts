import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Config } from '../../src/config.js';
import { loadConfig } from '../../src/config.js';
import { startService } from '../../src/service.js';
import type { Service } from '../../src/service.js';
import { REDIS_URL, uniquePrefix } from './backends.js';

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
    ...env,
  });
}

/** Starts a real server; the caller closes it in afterEach/afterAll. */
export function startTestService(env: Record<string, string | undefined> = {}): Promise<Service> {
  return startService(testConfig(env), silentLog);
}
