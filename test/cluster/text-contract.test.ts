import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionOf } from '../../src/broker/cluster-keys.js';
import { RedisBroker } from '../../src/broker/redis.js';
import { ProgressTracker } from '../../src/progress/tracker.js';
import { DEFAULT_BACKEND_TIMEOUT_MS, DEFAULT_CLUSTER_SLOTS_REFRESH_MS } from '../../src/config.js';
import { uniquePrefix } from '../support/backends.js';
import { RedisCluster, RedisSentinels } from '../support/redis-cluster.js';
import { silentLog } from '../support/service.js';
import { until } from '../support/wait.js';
import { textLogContract } from '../broker/text-contract.js';
import { textLogOn } from '../broker/redis-text-subject.js';

let cluster: RedisCluster;
let sentinels: RedisSentinels;

beforeAll(async () => {
  [cluster, sentinels] = await Promise.all([RedisCluster.start(), RedisSentinels.start()]);
}, 90_000);

afterAll(async () => {
  await Promise.allSettled([cluster?.stop(), sentinels?.stop()]);
});

const hostPorts = (list: string) => list.split(',').map((entry) => ({ host: '127.0.0.1', port: Number(entry.split(':')[1]) }));

async function clusterBroker(keyPrefix: string, pubsub: 'sharded' | 'classic', terminalTtlSeconds?: number): Promise<RedisBroker> {
  const broker = new RedisBroker({ timeoutMs: DEFAULT_BACKEND_TIMEOUT_MS,
    target: { kind: 'cluster', nodes: hostPorts(cluster.seeds), pubsub, password: null, tls: false, slotsRefreshMs: DEFAULT_CLUSTER_SLOTS_REFRESH_MS },
    keyPrefix,
    ttlSeconds: 600,
    terminalTtlSeconds,
    log: silentLog,
  });
  if (!(await broker.ready(10_000))) throw new Error('the cluster is not answering');
  return broker;
}

async function sentinelBroker(keyPrefix: string): Promise<RedisBroker> {
  const broker = new RedisBroker({ timeoutMs: DEFAULT_BACKEND_TIMEOUT_MS,
    target: { kind: 'sentinel', sentinels: hostPorts(sentinels.sentinels), masterName: RedisSentinels.MASTER_NAME, password: null, tls: false },
    keyPrefix,
    ttlSeconds: 600,
    log: silentLog,
  });
  if (!(await broker.ready(10_000))) throw new Error('the Sentinel master is not answering');
  return broker;
}

for (const pubsub of ['sharded', 'classic'] as const) {
  textLogContract(`redis cluster (${pubsub} pub/sub)`, async ({ maxSectionBytes }) => {
    const prefix = uniquePrefix();
    return textLogOn(await clusterBroker(prefix, pubsub), prefix, maxSectionBytes);
  });
}
textLogContract('redis sentinel', async ({ maxSectionBytes }) => {
  const prefix = uniquePrefix();
  return textLogOn(await sentinelBroker(prefix), prefix, maxSectionBytes);
});

describe('Redis Cluster live-text wire format', () => {
  it("keeps a book's text, its hash and its channels in the slot of the book's partition, and SPUBLISHes", async () => {
    const prefix = uniquePrefix();
    const under = textLogOn(await clusterBroker(prefix, 'sharded'), prefix, 1024);
    const admin = new Cluster(hostPorts(cluster.seeds));
    let subscriber: Redis | null = null;
    try {
      const id = 'cluster-text';
      const p = partitionOf(id);
      const names = [`${prefix}{p${p}}:text:${id}:1:1`, `${prefix}{p${p}}:textmeta:${id}`, `${prefix}{p${p}}:texts:${id}`, `${prefix}{p${p}}:textfeed`, `${prefix}{p${p}}:fence:${id}`];
      const slot = Number(await admin.cluster('KEYSLOT', `${prefix}{p${p}}:progress:${id}`));
      for (const name of names) expect(Number(await admin.cluster('KEYSLOT', name))).toBe(slot);
      subscriber = new Redis({ host: '127.0.0.1', port: await cluster.ownerOf(slot) });
      const messages: string[] = [];
      subscriber.on('smessage', (channel: string, message: string) => messages.push(`${channel === names[2] ? 'book' : 'feed'} ${message}`));
      await subscriber.ssubscribe(names[2]!, names[3]!);
      await under.text.beginSection(id, 1, 1, 1);
      await under.text.append(id, { chapter: 1, section: 1, offset: 0 }, 'sharded', 1);
      expect(await admin.get(names[0]!)).toBe('sharded');
      expect(await admin.hget(names[1]!, 'current')).toBe('1:1');
      await until(() => messages.length === 2, 5_000, 'the chunk on the book channel and the feed');
      const chunk = '{"bookId":"cluster-text","chapter":1,"section":1,"attempt":1,"offset":0,"text":"sharded"}';
      expect(messages.sort()).toEqual([`book ${chunk}`, `feed ${chunk}`]);
    } finally {
      subscriber?.disconnect();
      admin.disconnect();
      await under.close();
    }
  });

  it("cuts a finished book's state, fence and live text to the terminal TTL, in the book's slot", async () => {
    const prefix = uniquePrefix();
    const broker = await clusterBroker(prefix, 'sharded', 60);
    const under = textLogOn(broker, prefix, 1024);
    const admin = new Cluster(hostPorts(cluster.seeds));
    try {
      const id = 'cluster-finished';
      const tag = `${prefix}{p${partitionOf(id)}}:`;
      const tracker = new ProgressTracker({ states: broker });
      await tracker.updateProgress(id, { status: 'GENERATING', totalChapters: 1, message: 'writing' }, { fence: 3 });
      await under.text.append(id, { chapter: 1, section: 2, offset: 0 }, 'text', 3);
      const names = [`${tag}progress:${id}`, `${tag}fence:${id}`, `${tag}text:${id}:1:2`, `${tag}textmeta:${id}`];
      for (const name of names) expect(await admin.ttl(name), name).toBeGreaterThan(500);
      await tracker.markComplete(id, 1, { fence: 3 });
      for (const name of names) {
        const ttl = await admin.ttl(name);
        expect(ttl > 50 && ttl <= 60, `${name}: ${ttl}`).toBe(true);
      }
    } finally {
      admin.disconnect();
      await under.close();
    }
  });
});
