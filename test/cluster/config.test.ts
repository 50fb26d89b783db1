import { describe, expect, it } from 'vitest';
import { DEFAULT_CLUSTER_SLOTS_REFRESH_MS, loadConfig } from '../../src/config.js';

describe('Redis mode configuration', () => {
  it('reads a cluster from REDIS_CLUSTER_NODES, with REDIS_PASSWORD, REDIS_TLS and the pub/sub kind', () => {
    const config = loadConfig({ REDIS_CLUSTER_NODES: 'a.example:7000, b.example:7001', REDIS_PASSWORD: 'pw', REDIS_TLS: 'true', REDIS_CLUSTER_PUBSUB: 'classic' });
    expect(config.redisUrl).toBeNull();
    expect(config.redisTarget).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'a.example', port: 7000 },
        { host: 'b.example', port: 7001 },
      ],
      pubsub: 'classic',
      password: 'pw',
      tls: true,
      slotsRefreshMs: DEFAULT_CLUSTER_SLOTS_REFRESH_MS,
    });
    expect(loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000', REDIS_CLUSTER_SLOTS_REFRESH_MS: '250' }).redisTarget).toMatchObject({ slotsRefreshMs: 250 });
    expect(loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7000' }).redisTarget).toMatchObject({ pubsub: 'sharded', tls: false, password: null });
  });

  it('reads Sentinel from REDIS_SENTINELS and REDIS_SENTINEL_MASTER', () => {
    expect(loadConfig({ REDIS_SENTINELS: 's1:26379,s2:26379', REDIS_SENTINEL_MASTER: 'booksai' }).redisTarget).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26379 },
      ],
      masterName: 'booksai',
      password: null,
      tls: false,
    });
  });

  it('keeps REDIS_URL (and REDIS_HOST) as the single-node mode', () => {
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6380' }).redisTarget).toEqual({ kind: 'single', url: 'redis://127.0.0.1:6380' });
    expect(loadConfig({ REDIS_HOST: 'cache' }).redisTarget).toEqual({ kind: 'single', url: 'redis://cache:6379' });
    expect(loadConfig({}).redisTarget).toBeNull();
  });

  it('refuses two modes at once, and a half-configured one, naming the variables', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://h:1', REDIS_CLUSTER_NODES: 'h:2' })).toThrow(/REDIS_URL \(or REDIS_HOST\) and REDIS_CLUSTER_NODES are both set; set exactly one Redis mode/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'h:2', REDIS_SENTINELS: 'h:3', REDIS_SENTINEL_MASTER: 'm' })).toThrow(/REDIS_CLUSTER_NODES and REDIS_SENTINELS/);
    expect(() => loadConfig({ REDIS_HOST: 'h', REDIS_SENTINELS: 'h:3', REDIS_SENTINEL_MASTER: 'm' })).toThrow(/exactly one Redis mode/);
    expect(() => loadConfig({ REDIS_SENTINELS: 'h:3' })).toThrow(/REDIS_SENTINELS needs REDIS_SENTINEL_MASTER/);
    expect(() => loadConfig({ REDIS_SENTINEL_MASTER: 'm' })).toThrow(/REDIS_SENTINEL_MASTER needs REDIS_SENTINELS/);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'no-port' })).toThrow(/REDIS_CLUSTER_NODES.0: each entry must be host:port/);
    expect(() => loadConfig({ REDIS_CLUSTER_PUBSUB: 'fast', REDIS_CLUSTER_NODES: 'h:1' })).toThrow(/REDIS_CLUSTER_PUBSUB/);
  });
});
