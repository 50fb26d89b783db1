/**
 * Fan-out, memory and churn, at each client count, on the server, B3 and Socket.IO in turn:
 * (a) every client watches its own book, each book updated `ownBookHz` times a second;
 * (b) every client watches one book updated `oneBookHz` times a second;
 * (c) `watchersPerBook` clients on each of clients / watchersPerBook books, fed by HTTP publishes
 *     (`POST /api/ai/progress/:bookId`) at `publishesPerSecond` in all: how users run it. The
 *     server and B3 only (B3 answers the same POST with a bare PUBLISH).
 * Memory per idle connection is read once (a)'s clients are connected and before anything is
 * published; churn runs on the server at the largest size.
 */
import { loadavg } from 'node:os';
import { Child } from '../support/children.js';
import { seedBooks } from '../support/fixtures.js';
import type { BookRange } from '../support/fixtures.js';
import type { LatencySummary } from '../support/histogram.js';
import type { Plan } from '../support/plan.js';
import { cpuMeter } from '../support/proc.js';
import type { PublishMode } from '../load/publisher.js';
import type { ChurnResult, ConnectResult, DeliveryReport, SwarmPool } from '../load/swarm-pool.js';
import type { ClientKind } from '../load/swarm-protocol.js';
import { HOST, startBaseline, startServer } from '../support/targets.js';
import type { BenchContext, LoopStats, MemoryReading, Target } from '../support/targets.js';

export type FanoutTarget = 'server' | 'b3' | 'socketio';
export const FANOUT_TARGETS: FanoutTarget[] = ['server', 'b3', 'socketio'];

export interface FanoutRun {
  target: FanoutTarget;
  clients: number;
  /** a: one book per client; b: one book for all; c: 100 watchers per book, HTTP publishes. */
  shape: 'a' | 'b' | 'c';
  connect: ConnectResult;
  /** How long the publisher published. */
  windowMs: number;
  /** States the publisher got accepted, and at what rate. */
  published: number;
  publishRate: number;
  /** Deliveries a client would see if it got every state. */
  expected: number;
  received: number;
  deliveredPerSecond: number;
  latency: LatencySummary;
  /** Clients not on their book's latest version after the settle time. */
  lost: number;
  dropped: number;
  /** Target CPU while publishing, % of one core; the swarm's, summed over its processes; Redis'. */
  cpuPercent: number;
  swarmCpuPercent: number;
  redisCpuPercent: number;
  /** Publisher's send-to-reply time of each Redis command (commit or PUBLISH); null for Socket.IO. */
  redisAckMs: LatencySummary | null;
  errors: Record<string, number>;
  /** Publishes that failed (an HTTP error or a Redis error), and the first one's message. */
  publishFailures: { count: number; first: string | null };
  /** The target's event-loop delay and GC pauses while publishing (only with `--loop-stats`). */
  loop?: LoopStats;
}

export interface MemoryRun {
  target: FanoutTarget;
  clients: number;
  before: MemoryReading;
  after: MemoryReading;
  rssPerConnection: number;
  heapPerConnection: number;
}

export interface FanoutResult {
  runs: FanoutRun[];
  memory: MemoryRun[];
  churn: (ChurnResult & { clients: number }) | null;
}

const MODES: Record<FanoutTarget, { client: ClientKind; publish: PublishMode }> = {
  server: { client: 'sse', publish: 'commit' },
  b3: { client: 'sse', publish: 'publish' },
  socketio: { client: 'socketio', publish: 'socketio' },
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runFanout(ctx: BenchContext, plan: Plan, swarm: SwarmPool, log: (line: string) => void): Promise<FanoutResult> {
  const result: FanoutResult = { runs: [], memory: [], churn: null };
  const largest = Math.max(...plan.fanout.sizes);
  for (const clients of plan.fanout.sizes) {
    for (let round = 1; round <= plan.fanout.repeats; round++) {
      for (const kind of FANOUT_TARGETS.filter((t) => plan.fanout.targets.includes(t))) {
        log(`fan-out: ${kind} at ${clients} clients${plan.fanout.repeats > 1 ? `, round ${round} of ${plan.fanout.repeats}` : ''} (load average ${loadavg()[0]?.toFixed(1)})`);
        await onTarget(ctx, plan, swarm, kind, clients, result, clients === largest && round === 1);
      }
    }
  }
  return result;
}

async function onTarget(ctx: BenchContext, plan: Plan, swarm: SwarmPool, kind: FanoutTarget, clients: number, result: FanoutResult, churn: boolean): Promise<void> {
  const prefix = `${ctx.runPrefix}fan${clients}-${kind}:`;
  const own: BookRange = { prefix: `a${clients}-`, first: 0, count: clients };
  const one: BookRange = { prefix: `b${clients}-`, first: 0, count: 1 };
  await seedBooks(ctx.redis, prefix, own);
  await seedBooks(ctx.redis, prefix, one);
  const target = kind === 'server' ? await startServer(ctx, { keyPrefix: prefix, env: plan.fanout.serverEnv, nodeArgs: plan.fanout.serverNodeArgs, ...(plan.fanout.serverCpuProfileDir ? { cpuProfileDir: plan.fanout.serverCpuProfileDir } : {}) }) : await startBaseline(ctx, kind, prefix);
  const publisher = new Child({
    name: `publisher-${kind}-${clients}`,
    nodeArgs: ['--import', 'tsx', 'bench/load/publisher.ts'],
    cwd: ctx.root,
    logDir: ctx.logDir,
    env: { BENCH_PUBLISH_MODE: kind === 'server' ? plan.fanout.serverPublish : MODES[kind].publish, BENCH_KEY_PREFIX: prefix, BENCH_SOCKETIO_KEY: prefix },
  });
  try {
    await publisher.next('ready', 30_000);
    const before = await target.memory();
    const connectA = await swarm.connect(MODES[kind].client, target, own, clients, 'own', plan.fanout.connectTimeoutMs);
    await sleep(plan.fanout.idleMs);
    const after = await target.memory();
    const opened = Math.max(1, connectA.opened);
    result.memory.push({
      target: kind,
      clients,
      before,
      after,
      rssPerConnection: (after.rss - before.rss) / opened,
      heapPerConnection: (after.heapUsed - before.heapUsed) / opened,
    });
    // Warm-up at the same rate, so JIT compilation of the delivery path is not measured.
    await publisher.request({ cmd: 'run', books: own, hz: plan.fanout.ownBookHz, durationMs: plan.fanout.warmupMs }, 'published', plan.fanout.warmupMs + 60_000);
    await sleep(plan.fanout.idleMs);
    result.runs.push(await measure(ctx, plan, swarm, publisher, target, kind, 'a', own, clients, plan.fanout.ownBookHz, connectA));
    await swarm.disconnect();

    if (plan.fanout.shapes.includes('c') && kind !== 'socketio') result.runs.push(await sharedBooks(ctx, plan, swarm, target, kind, prefix, clients));

    if (plan.fanout.shapes.includes('b')) {
      const connectB = await swarm.connect(MODES[kind].client, target, one, clients, 'one', plan.fanout.connectTimeoutMs);
      await sleep(plan.fanout.idleMs / 2);
      result.runs.push(await measure(ctx, plan, swarm, publisher, target, kind, 'b', one, clients, plan.fanout.oneBookHz, connectB));
      await swarm.disconnect();
    }

    if (churn && kind === 'server') {
      const outcome = await swarm.churn('sse', target, own, plan.churn.concurrency, plan.churn.durationMs, plan.churn.maxConnects);
      result.churn = { ...outcome, clients };
    }
  } finally {
    await Promise.all([publisher.stop(), target.stop()]);
  }
}

/**
 * (c): the clients spread over clients / watchersPerBook books, and a publisher of its own
 * POSTing updates to the target (the server's HTTP publish; B3's bare one).
 */
async function sharedBooks(ctx: BenchContext, plan: Plan, swarm: SwarmPool, target: Target, kind: FanoutTarget, prefix: string, clients: number): Promise<FanoutRun> {
  const { publishesPerSecond, watchersPerBook } = plan.fanout.shared;
  const books: BookRange = { prefix: `c${clients}-`, first: 0, count: Math.max(1, Math.floor(clients / watchersPerBook)) };
  await seedBooks(ctx.redis, prefix, books);
  const publisher = new Child({
    name: `publisher-http-${kind}-${clients}`,
    nodeArgs: ['--import', 'tsx', 'bench/load/publisher.ts'],
    cwd: ctx.root,
    logDir: ctx.logDir,
    env: { BENCH_PUBLISH_MODE: 'http', BENCH_KEY_PREFIX: prefix, BENCH_TARGET_URL: `http://${HOST}:${target.port}` },
  });
  try {
    await publisher.next('ready', 30_000);
    const connect = await swarm.connect('sse', target, books, books.count * watchersPerBook, 'shared', plan.fanout.connectTimeoutMs);
    const hz = publishesPerSecond / books.count;
    await publisher.request({ cmd: 'run', books, hz, durationMs: plan.fanout.warmupMs }, 'published', plan.fanout.warmupMs + 60_000);
    await sleep(plan.fanout.idleMs);
    const run = await measure(ctx, plan, swarm, publisher, target, kind, 'c', books, clients, hz, connect);
    await swarm.disconnect();
    return run;
  } finally {
    await publisher.stop();
  }
}

/** Redis' own CPU use (INFO cpu), as a percentage of one core. */
async function redisCpuMeter(ctx: BenchContext): Promise<{ stop(): Promise<number> }> {
  const seconds = async () => {
    const info = await ctx.redis.info('cpu');
    const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
    return field('used_cpu_user') + field('used_cpu_sys');
  };
  const cpu0 = await seconds();
  const t0 = performance.now();
  return { stop: async () => (100 * ((await seconds()) - cpu0)) / ((performance.now() - t0) / 1000) };
}

async function measure(
  ctx: BenchContext,
  plan: Plan,
  swarm: SwarmPool,
  publisher: Child,
  target: Target,
  kind: FanoutTarget,
  shape: 'a' | 'b' | 'c',
  books: BookRange,
  clients: number,
  hz: number,
  connect: ConnectResult,
): Promise<FanoutRun> {
  await swarm.reset();
  const meter = cpuMeter(target.pid);
  const swarmMeters = swarm.pids.map((pid) => cpuMeter(pid));
  const redisMeter = await redisCpuMeter(ctx);
  if (plan.fanout.loopStats) await target.loopStart();
  const startedAt = Date.now();
  const durationMs = plan.fanout.durationMs[shape];
  const published = await publisher.request({ cmd: 'run', books, hz, durationMs }, 'published', durationMs + 60_000);
  const loop = plan.fanout.loopStats ? await target.loopStats() : undefined;
  const cpuPercent = meter.stop();
  const swarmCpuPercent = swarmMeters.reduce((sum, m) => sum + m.stop(), 0);
  const redisCpuPercent = await redisMeter.stop();
  const finalVersions = published.finalVersions as number[];
  let report: DeliveryReport = await swarm.report(finalVersions);
  for (const deadline = performance.now() + plan.fanout.settleMs; report.lost > 0 && performance.now() < deadline; ) {
    await sleep(250);
    report = await swarm.report(finalVersions);
  }
  const acked = Number(published.acked);
  const watchersPerState = shape === 'a' ? 1 : shape === 'c' ? plan.fanout.shared.watchersPerBook : clients;
  const spanMs = Math.max(1, report.lastReceiveAt - startedAt);
  return {
    target: kind,
    clients,
    shape,
    connect,
    windowMs: durationMs,
    published: acked,
    publishRate: Number(published.rate),
    expected: acked * watchersPerState,
    received: report.received,
    deliveredPerSecond: (1000 * report.received) / spanMs,
    latency: report.latency.summary(),
    lost: report.lost,
    dropped: report.dropped,
    cpuPercent,
    swarmCpuPercent,
    redisCpuPercent,
    redisAckMs: kind === 'socketio' ? null : (published.ackMs as LatencySummary),
    errors: report.errors,
    publishFailures: { count: Number(published.failed), first: (published.firstFailure as string | null) ?? null },
    ...(loop ? { loop } : {}),
  };
}
