/**
 * The processes under measurement: the server under test (`node --import tsx src/main.ts`, as
 * the issue prescribes) and the baselines, each with the probe preloaded for heap readings.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { Child } from './children.js';
import { REDIS_URL } from './fixtures.js';
import type { PgProxy } from './pg-proxy.js';
import { rssBytes } from './proc.js';

export const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 30_000;

export interface BenchContext {
  /** The project root, the children's working directory. */
  root: string;
  logDir: string;
  /** Every Redis key of this run starts with it. */
  runPrefix: string;
  redis: Redis;
  databaseName: string;
  proxy: PgProxy;
  /** The server reaches Postgres through the counting proxy on this port. */
  proxyPort: number;
  quick: boolean;
}

export type TargetKind = 'server' | 'b0' | 'b1' | 'b3' | 'socketio';

export interface MemoryReading {
  /** VmRSS from /proc, bytes. */
  rss: number;
  /** V8 heap in use after a forced full GC, bytes. */
  heapUsed: number;
  /** Memory outside the V8 heap held by JS objects (Buffers), bytes. */
  external: number;
}

/** What bench/support/probe.ts reports for `loop`: event-loop delay and GC pauses over a window. */
export interface LoopStats {
  windowMs: number;
  loopDelayMs: { p50: number; p99: number; max: number; mean: number };
  gc: Record<string, { count: number; totalMs: number; maxMs: number }>;
  longGc: Array<{ kind: string; ms: number; at: number }>;
  /** The loop blocked longer than 40 ms: by how much, when (ms into the window) and the wall clock then. */
  blocks: Array<{ ms: number; at: number; wallMs: number }>;
}

export class Target {
  constructor(
    readonly kind: TargetKind,
    readonly child: Child,
    readonly port: number,
    /** The Redis key prefix it uses (server, B1, B3), or the Socket.IO adapter key. */
    readonly keyPrefix: string,
  ) {}

  get pid(): number {
    return this.child.pid;
  }

  async memory(): Promise<MemoryReading> {
    const reading = await this.child.request({ cmd: 'mem' }, 'mem', 15_000);
    return { rss: rssBytes(this.pid), heapUsed: Number(reading.heapUsed), external: Number(reading.external) };
  }

  /** Starts (or resets) the probe's event-loop delay and GC measurement. */
  async loopStart(): Promise<void> {
    await this.child.request({ cmd: 'loop-start' }, 'loop-started', 15_000);
  }

  /** Event-loop delay and GC pauses since loopStart. */
  async loopStats(): Promise<LoopStats> {
    const { evt: _evt, ...stats } = await this.child.request({ cmd: 'loop' }, 'loop', 15_000);
    return stats as unknown as LoopStats;
  }

  async stop(): Promise<void> {
    await this.child.stop();
  }
}

let started = 0;
/** Log file names stay apart when a kind of target starts several times. */
const childName = (kind: string) => `${kind}-${++started}`;

const PROBE = ['--expose-gc', '--import', 'tsx', '--import', './bench/support/probe.ts'];
/** The V8 flags `npm start` and the Dockerfile run the server with (see docs/operations.md, "Memory and GC"). */
const SERVER_V8_FLAGS = ['--max-semi-space-size=32'];

export interface ServerOptions {
  keyPrefix: string;
  /** Extra environment, e.g. SNAPSHOT_INTERVAL_MS. */
  env?: Record<string, string>;
  /** Write a V8 CPU profile here when the server exits. */
  cpuProfileDir?: string;
  /** Extra Node/V8 flags, e.g. `--trace-gc`. */
  nodeArgs?: string[];
  name?: string;
}

export async function startServer(ctx: BenchContext, options: ServerOptions): Promise<Target> {
  const port = await freePort();
  const profile = options.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir] : [];
  const child = new Child({
    name: childName(options.name ?? 'server'),
    nodeArgs: [...PROBE, ...SERVER_V8_FLAGS, ...(options.nodeArgs ?? []), ...profile, 'src/main.ts'],
    cwd: ctx.root,
    logDir: ctx.logDir,
    env: {
      PORT: String(port),
      HOST,
      REDIS_URL,
      REDIS_KEY_PREFIX: options.keyPrefix,
      DATABASE_URL: `postgres://postgres@127.0.0.1:${ctx.proxyPort}/${ctx.databaseName}`,
      LOG_LEVEL: 'warn',
      ...options.env,
    },
  });
  const deadline = performance.now() + START_TIMEOUT_MS;
  while (performance.now() < deadline) {
    if (!child.running) throw new Error(`the server exited at start; see ${ctx.logDir}/${child.name}.log`);
    const ok = await fetch(`http://${HOST}:${port}/healthz`).then(
      (res) => res.ok,
      () => false,
    );
    if (ok) return new Target('server', child, port, options.keyPrefix);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await child.stop();
  throw new Error(`the server did not answer /healthz within ${START_TIMEOUT_MS} ms`);
}

const BASELINE_SCRIPTS: Record<Exclude<TargetKind, 'server'>, string> = {
  b0: 'bench/baselines/b0-static.ts',
  b1: 'bench/baselines/b1-redis-get.ts',
  b3: 'bench/baselines/b3-sse-fanout.ts',
  socketio: 'bench/baselines/socketio.ts',
};

export async function startBaseline(
  ctx: BenchContext,
  kind: Exclude<TargetKind, 'server'>,
  keyPrefix: string,
  env: Record<string, string> = {},
): Promise<Target> {
  const port = await freePort();
  const child = new Child({
    name: childName(kind),
    nodeArgs: [...PROBE, BASELINE_SCRIPTS[kind]],
    cwd: ctx.root,
    logDir: ctx.logDir,
    env: { PORT: String(port), HOST, BENCH_KEY_PREFIX: keyPrefix, BENCH_SOCKETIO_KEY: keyPrefix, ...env },
  });
  try {
    await child.next('listening', START_TIMEOUT_MS);
  } catch (error) {
    await child.stop();
    throw error;
  }
  return new Target(kind, child, port, keyPrefix);
}

/** A port nobody listens on now (released at once; the target binds it next). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
