import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HEARTBEAT_MS, loadConfig } from '../src/config.js';

describe('loadConfig', () => {
  it('has a default for everything: in-memory broker, embedded database', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      host: '0.0.0.0',
      redisUrl: null,
      redisKeyPrefix: 'booksai:',
      progressTtlSeconds: 86_400,
      terminalTtlSeconds: 3_600,
      databaseUrl: null,
      dataDir: './data',
      snapshotIntervalMs: 30_000,
      heartbeatMs: DEFAULT_HEARTBEAT_MS,
      maxBodyBytes: 65_536,
      backendTimeoutMs: 2_000,
      logLevel: 'info',
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('keeps a finished book no longer than a running one', () => {
    expect(loadConfig({ PROGRESS_TTL_SECONDS: '600' }).terminalTtlSeconds).toBe(600);
    expect(loadConfig({ TERMINAL_TTL_SECONDS: '120' }).terminalTtlSeconds).toBe(120);
  });

  it('has the durable-generation defaults, and refuses out-of-range values', () => {
    expect(loadConfig({})).toMatchObject({ runLeaseMs: 15_000, maxGenerations: 4, generatorRetries: 5, demoFailureRate: 0 });
    expect(loadConfig({ RUN_LEASE_MS: '2000', MAX_GENERATIONS: '0', GENERATOR_RETRIES: '0', DEMO_FAILURE_RATE: '0.3' })).toMatchObject({
      runLeaseMs: 2_000,
      maxGenerations: 0,
      generatorRetries: 0,
      demoFailureRate: 0.3,
    });
    const bad = () => loadConfig({ RUN_LEASE_MS: '10', MAX_GENERATIONS: '-1', GENERATOR_RETRIES: 'x', DEMO_FAILURE_RATE: '1.5' });
    for (const name of ['RUN_LEASE_MS', 'MAX_GENERATIONS', 'GENERATOR_RETRIES', 'DEMO_FAILURE_RATE']) expect(bad).toThrow(name);
  });

  it('has the generator defaults (demo at 40 tokens a second), and GENERATOR=openai with its settings', () => {
    expect(loadConfig({})).toMatchObject({ generator: { kind: 'demo' }, demoTokensPerSecond: 40 });
    expect(loadConfig({ GENERATOR: 'openai', OPENAI_API_KEY: 'none' }).generator).toEqual({
      kind: 'openai',
      baseUrl: 'https://api.openai.com/v1',
      apiKey: 'none',
      model: 'gpt-4o-mini',
      timeoutMs: 60_000,
    });
    const local = { GENERATOR: 'openai', OPENAI_BASE_URL: 'http://localhost:11434/v1', OPENAI_API_KEY: 'none', OPENAI_MODEL: 'llama3.2', OPENAI_TIMEOUT_MS: '5000' };
    expect(loadConfig(local).generator).toEqual({ kind: 'openai', baseUrl: 'http://localhost:11434/v1', apiKey: 'none', model: 'llama3.2', timeoutMs: 5_000 });
    expect(() => loadConfig({ GENERATOR: 'openai' })).toThrow('OPENAI_API_KEY');
    const bad = () => loadConfig({ GENERATOR: 'gpt', OPENAI_BASE_URL: 'ftp://x', OPENAI_TIMEOUT_MS: '10', DEMO_TOKENS_PER_SECOND: '0' });
    for (const name of ['GENERATOR', 'OPENAI_BASE_URL', 'OPENAI_TIMEOUT_MS', 'DEMO_TOKENS_PER_SECOND']) expect(bad).toThrow(name);
  });

  it('takes REDIS_HOST / REDIS_PORT / REDIS_PASSWORD, and REDIS_URL over them', () => {
    expect(loadConfig({ REDIS_HOST: 'cache.internal', REDIS_PORT: '6380', REDIS_PASSWORD: 'p@ss' }).redisUrl).toBe('redis://:p%40ss@cache.internal:6380');
    expect(loadConfig({ REDIS_HOST: 'cache.internal', REDIS_URL: 'rediss://other:6379' }).redisUrl).toBe('rediss://other:6379');
  });

  it('reads BACKEND_TIMEOUT_MS and refuses one below 100 ms', () => {
    expect(loadConfig({ BACKEND_TIMEOUT_MS: '750' }).backendTimeoutMs).toBe(750);
    expect(() => loadConfig({ BACKEND_TIMEOUT_MS: '50' })).toThrow('BACKEND_TIMEOUT_MS');
  });

  it('treats blank values as unset', () => {
    expect(loadConfig({ PORT: '', REDIS_URL: '', DATABASE_URL: '' })).toMatchObject({ port: 3000, redisUrl: null, databaseUrl: null });
  });

  it('refuses bad values with one message naming each', () => {
    const bad = () =>
      loadConfig({ PORT: 'abc', HEARTBEAT_MS: '30000', REDIS_URL: 'http://x', REDIS_KEY_PREFIX: 'a*', DATABASE_URL: 'mysql://x', LOG_LEVEL: 'loud' });
    expect(bad).toThrow(/^invalid configuration: /);
    for (const name of ['PORT', 'HEARTBEAT_MS', 'REDIS_URL', 'REDIS_KEY_PREFIX', 'DATABASE_URL', 'LOG_LEVEL']) expect(bad).toThrow(name);
  });

  it('stops the server at start with that message and exit code 1', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { PATH: process.env.PATH ?? '', PORT: 'not-a-port' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('invalid configuration: PORT');
  });
});
