/**
 * The same commit load on one Redis and on a three-master Redis Cluster (`npm run bench -- --only
 * cluster`): commits/s, each master's share of the Redis CPU time (INFO cpu deltas) and of the
 * publications (INFO commandstats), and the fan-out latency from commit to SSE client, p99.
 * Floors: no master above 45 % of the publications or CPU; fan-out p99 within 1.2x one Redis.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { EventSource } from 'eventsource';
import type { RedisTarget } from '../../src/config.js';
import { DEFAULT_CLUSTER_SLOTS_REFRESH_MS } from '../../src/config.js';
import type { BookProgress } from '../../src/progress/schema.js';
import { RedisCluster, nodeClient } from '../../test/support/redis-cluster.js';
import { RedisProcess } from '../../test/support/redis-process.js';
import { ServerProcess } from '../../test/support/server-process.js';
import { Histogram } from '../support/histogram.js';
import type { LatencySummary } from '../support/histogram.js';

export interface ClusterPlan {
  books: number;
  /** Commits per second over all books. */
  rate: number;
  durationMs: number;
  /** Runs of each mode, alternating. */
  repeats: number;
}

export interface NodeShare {
  port: number;
  cpuSeconds: number;
  publications: number;
  cpuShare: number;
  publicationShare: number;
}

export interface ClusterRun {
  mode: 'single' | 'cluster';
  commitsPerSecond: number;
  failed: number;
  nodes: NodeShare[];
  fanout: LatencySummary;
}

export interface ClusterResult {
  plan: ClusterPlan;
  runs: ClusterRun[];
  floors: Array<{ name: string; measured: string; limit: string; pass: boolean }>;
}

async function nodeStats(port: number): Promise<{ cpu: number; publications: number }> {
  const client = nodeClient(port);
  try {
    await client.connect();
    const cpu = await client.info('cpu');
    const stats = await client.info('commandstats');
    const seconds = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(cpu)?.[1] ?? 0);
    const calls = (command: string) => Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    return { cpu: seconds('used_cpu_sys') + seconds('used_cpu_user'), publications: calls('spublish') + calls('publish') };
  } finally {
    client.disconnect();
  }
}

async function runOne(mode: 'single' | 'cluster', plan: ClusterPlan, log: (line: string) => void): Promise<ClusterRun> {
  const single = mode === 'single' ? await RedisProcess.start() : null;
  const cluster = mode === 'cluster' ? await RedisCluster.start(3, 0) : null;
  const ports = single ? [single.port] : (await cluster!.masters()).map((m) => m.port);
  const target: RedisTarget = single
    ? { kind: 'single', url: single.url }
    : { kind: 'cluster', nodes: ports.map((port) => ({ host: '127.0.0.1', port })), pubsub: 'sharded', password: null, tls: false, slotsRefreshMs: DEFAULT_CLUSTER_SLOTS_REFRESH_MS };
  const env: Record<string, string> = single ? { REDIS_URL: single.url } : { REDIS_CLUSTER_NODES: cluster!.seeds };
  let server: ServerProcess | null = null;
  const sources: EventSource[] = [];
  const publisher = spawn(process.execPath, ['--import', 'tsx', 'bench/load/cluster-publisher.ts'], {
    env: { PATH: process.env.PATH ?? '', BENCH_REDIS: JSON.stringify(target), BENCH_BOOKS: String(plan.books), BENCH_RATE: String(plan.rate), BENCH_DURATION_MS: String(plan.durationMs), BENCH_KEY_PREFIX: 'bench:' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  try {
    const lines = createInterface({ input: publisher.stdout! });
    const events: Array<Record<string, unknown>> = [];
    const next = (evt: string) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const check = () => {
          const found = events.find((e) => e.evt === evt);
          if (found) resolve(found);
        };
        lines.on('line', (line) => {
          events.push(JSON.parse(line) as Record<string, unknown>);
          check();
        });
        publisher.once('exit', (code) => reject(new Error(`the publisher exited with ${code}`)));
        check();
      });
    const seeded = next('seeded');
    const done = next('done');
    await seeded;
    server = await ServerProcess.start({ ...env, REDIS_KEY_PREFIX: 'bench:', MAX_GENERATIONS: '0', SNAPSHOT_INTERVAL_MS: '30000' });
    const latency = new Histogram();
    let measuring = false;
    for (let i = 0; i < plan.books; i++) {
      const source = new EventSource(`${server.url}/api/ai/progress/cluster-bench-${i}/stream`);
      source.addEventListener('progress', (event) => {
        if (!measuring) return;
        latency.record(Date.now() - (JSON.parse(event.data) as BookProgress).timestamp);
      });
      sources.push(source);
    }
    await Promise.all(sources.map((s) => (s.readyState === EventSource.OPEN ? null : once(s, 'open'))));
    const before = await Promise.all(ports.map(nodeStats));
    measuring = true;
    log(`cluster scenario (${mode}): ${plan.rate} commits/s over ${plan.books} watched books for ${plan.durationMs / 1000} s`);
    publisher.stdin!.write('go\n');
    const result = await done;
    await new Promise((resolve) => setTimeout(resolve, 500));
    measuring = false;
    const after = await Promise.all(ports.map(nodeStats));
    const cpu = ports.map((_, i) => after[i]!.cpu - before[i]!.cpu);
    const publications = ports.map((_, i) => after[i]!.publications - before[i]!.publications);
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    return {
      mode,
      commitsPerSecond: Math.round(result.commitsPerSecond as number),
      failed: result.failed as number,
      nodes: ports.map((port, i) => ({
        port,
        cpuSeconds: cpu[i]!,
        publications: publications[i]!,
        cpuShare: cpu[i]! / sum(cpu),
        publicationShare: publications[i]! / sum(publications),
      })),
      fanout: latency.summary(),
    };
  } finally {
    for (const source of sources) source.close();
    publisher.kill('SIGKILL');
    await server?.stop('SIGKILL');
    await single?.stop();
    await cluster?.stop();
  }
}

/** Median of the values (the lower middle one for an even count). */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] as number;
}

/**
 * Runs one Redis and the cluster in turn, `plan.repeats` times each, alternating, so that load
 * from elsewhere on the machine falls on both alike; the floors compare the medians.
 */
export async function runCluster(plan: ClusterPlan, log: (line: string) => void): Promise<ClusterResult> {
  const runs: ClusterRun[] = [];
  for (let i = 0; i < plan.repeats; i++) {
    runs.push(await runOne('single', plan, log));
    runs.push(await runOne('cluster', plan, log));
  }
  const singles = runs.filter((r) => r.mode === 'single');
  const clusters = runs.filter((r) => r.mode === 'cluster');
  const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
  const maxCpu = Math.max(...clusters.flatMap((r) => r.nodes.map((n) => n.cpuShare)));
  const maxPub = Math.max(...clusters.flatMap((r) => r.nodes.map((n) => n.publicationShare)));
  const singleP99 = median(singles.map((r) => r.fanout.p99));
  const clusterP99 = median(clusters.map((r) => r.fanout.p99));
  return {
    plan,
    runs,
    floors: [
      { name: 'cluster: largest master share of publications (any run)', measured: pct(maxPub), limit: '≤ 45 %', pass: maxPub <= 0.45 },
      { name: 'cluster: largest master share of Redis CPU (any run)', measured: pct(maxCpu), limit: '≤ 45 %', pass: maxCpu <= 0.45 },
      {
        name: 'cluster: fan-out p99 vs one Redis (medians of the runs)',
        measured: `${clusterP99} ms vs ${singleP99} ms`,
        limit: '≤ 1.2x',
        pass: clusterP99 <= 1.2 * singleP99,
      },
    ],
  };
}

export function clusterMarkdown(result: ClusterResult): string {
  const { plan, runs, floors } = result;
  const lines = [
    `### Cluster: ${plan.rate} commits/s over ${plan.books} watched books, ${plan.durationMs / 1000} s per run, one server process, ${plan.repeats} run(s) of each, alternating`,
    '',
    '| Redis | commits/s | failed | fan-out p50 / p99 / max (ms) | per master: share of CPU · of publications |',
    '| --- | ---: | ---: | --- | --- |',
    ...runs.map(
      (r) =>
        `| ${r.mode === 'single' ? 'one Redis' : 'cluster, 3 masters'} | ${r.commitsPerSecond} | ${r.failed} | ${r.fanout.p50} / ${r.fanout.p99} / ${r.fanout.max} | ${r.nodes.map((n) => `${(100 * n.cpuShare).toFixed(1)} % · ${(100 * n.publicationShare).toFixed(1)} %`).join('; ')} |`,
    ),
    '',
    ...floors.map((f) => `- ${f.pass ? 'PASS' : 'FAIL'} ${f.name}: ${f.measured} (limit ${f.limit})`),
  ];
  return lines.join('\n');
}
