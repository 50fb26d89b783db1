import { setTimeout as delay } from 'node:timers/promises';
import type { FaultKind, HistoryWriter } from './history.js';
import { Prng } from './prng.js';
import type { Instance, Mode, Topology } from './topology.js';

/** One fault of the schedule: all of it drawn from the seed before the campaign starts. */
export interface PlannedFault {
  id: number;
  /** Ms after the load started. */
  at: number;
  kind: FaultKind;
  /** How long it lasts (a server's downtime, a freeze, a lock held, a partition). */
  holdMs: number;
  /** The server instance, for server faults and slow networks; the master's rank for master-kill. */
  target: number;
  /** Kind-specific: how a blackhole ends ('deliver' | 'reset'), the table locked, the added latency. */
  variant: string;
}

const SHARED: FaultKind[] = ['server-kill', 'server-term', 'server-stop', 'postgres-cut', 'postgres-blackhole', 'postgres-lock', 'slow-network', 'redis-maxmemory'];
export const FAULTS_OF: Record<Mode, readonly FaultKind[]> = {
  single: [...SHARED, 'redis-restart', 'redis-blackhole'],
  cluster: [...SHARED, 'master-kill'],
};

/** What a fault occupies: two faults of one resource never overlap, faults of different ones do. */
function resourceOf(kind: FaultKind, target: number): string {
  if (kind.startsWith('server-')) return `server-${target}`;
  if (kind === 'slow-network') return `link-${target}`;
  if (kind.startsWith('postgres-')) return 'postgres';
  return 'redis';
}

function hold(prng: Prng, kind: FaultKind): number {
  switch (kind) {
    case 'server-kill':
    case 'server-term':
      return prng.int(300, 3_000);
    case 'server-stop':
      return prng.int(1_000, 5_000);
    case 'redis-restart':
      return prng.int(300, 3_000);
    case 'master-kill':
      return prng.int(4_000, 8_000);
    case 'slow-network':
      return prng.int(2_000, 8_000);
    default:
      return prng.int(1_000, 5_000);
  }
}

function variant(prng: Prng, kind: FaultKind): string {
  if (kind === 'redis-blackhole' || kind === 'postgres-blackhole') return prng.pick(['deliver', 'reset']);
  if (kind === 'postgres-lock') return prng.pick(['books', 'chapters', 'runs']);
  if (kind === 'slow-network') return String(prng.int(50, 400));
  return '';
}

/**
 * The seeded schedule: a fault every 1-4 s on average, each on a resource not busy then, so
 * faults of different resources overlap; never more than `servers - 1` servers down at once.
 */
export function planFaults(seed: number, mode: Mode, durationMs: number, servers: number): PlannedFault[] {
  const prng = new Prng(seed);
  const busyUntil = new Map<string, number>();
  const plan: PlannedFault[] = [];
  // Room at the end for the last fault to heal inside the campaign.
  for (let at = prng.int(500, 2_500); at < durationMs - 3_000; at += prng.int(1_000, 4_000)) {
    for (let attempt = 0; attempt < 4; attempt++) {
      const kind = prng.pick(FAULTS_OF[mode]);
      const target = prng.int(0, servers - 1);
      const holdMs = hold(prng, kind);
      const v = variant(prng, kind);
      const resource = resourceOf(kind, target);
      // A restart takes a few seconds after the downtime: count it as busy too.
      const until = at + holdMs + (kind.startsWith('server-') || kind === 'master-kill' ? 6_000 : 500);
      if ((busyUntil.get(resource) ?? 0) > at) continue;
      const serversDown = [...busyUntil].filter(([r, end]) => r.startsWith('server-') && end > at).length;
      if (kind.startsWith('server-') && serversDown >= servers - 1) continue;
      busyUntil.set(resource, until);
      plan.push({ id: plan.length + 1, at, kind, holdMs, target, variant: v });
      break;
    }
  }
  return plan;
}

/** Resolves after `ms` of the schedule, or at once when the campaign heals everything. */
function holdFor(ms: number, heal: AbortSignal): Promise<void> {
  if (heal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      heal.removeEventListener('abort', done);
      resolve();
    }
    heal.addEventListener('abort', done);
  });
}

/**
 * Runs the schedule against `topology`, recording each fault's start and end. Faults of one
 * resource run one after the other (a late restart delays the next); `heal` ends every fault
 * still held and starts no new one. Resolves once every fault has ended.
 */
export async function runNemesis(plan: readonly PlannedFault[], topology: Topology, history: HistoryWriter, heal: AbortSignal): Promise<void> {
  const chains = new Map<string, Promise<void>>();
  const started = performance.now();
  const all: Array<Promise<void>> = [];
  for (const fault of plan) {
    const wait = fault.at - (performance.now() - started);
    if (wait > 0) await holdFor(wait, heal);
    if (heal.aborted) break;
    const resource = resourceOf(fault.kind, fault.target);
    const run = (chains.get(resource) ?? Promise.resolve()).then(async () => {
      if (heal.aborted) return;
      // A fault the harness could not inject or heal is recorded, not thrown: the campaign goes on.
      await inject(fault, topology, history, heal).catch((error: unknown) =>
        history.record({ type: 'nemesis-error', id: fault.id, kind: fault.kind, message: (error as Error).message.split('\n')[0]!.slice(0, 300) }),
      );
    });
    chains.set(resource, run);
    all.push(run);
  }
  await Promise.all(all);
}

async function inject(fault: PlannedFault, topology: Topology, history: HistoryWriter, heal: AbortSignal): Promise<void> {
  const instance = topology.instances[fault.target]!;
  let target: string | undefined = fault.kind.startsWith('server-') || fault.kind === 'slow-network' ? `server-${fault.target}` : undefined;
  if (fault.kind === 'postgres-lock') target = fault.variant;
  const record = (phase: 'start' | 'end') => history.record({ type: 'fault', phase, id: fault.id, kind: fault.kind, target });
  const cut = fault.variant === 'reset';
  switch (fault.kind) {
    case 'server-kill':
    case 'server-term':
      record('start');
      await instance.kill(fault.kind === 'server-kill' ? 'SIGKILL' : 'SIGTERM');
      await holdFor(fault.holdMs, heal);
      await restart(instance, history);
      return record('end');
    case 'server-stop':
      record('start');
      instance.current?.signal('SIGSTOP');
      await holdFor(fault.holdMs, heal);
      instance.current?.signal('SIGCONT');
      return record('end');
    case 'redis-restart':
      record('start');
      await topology.redis!.stop();
      await holdFor(fault.holdMs, heal);
      await topology.redis!.start();
      return record('end');
    case 'redis-blackhole':
    case 'postgres-blackhole': {
      const proxy = fault.kind === 'redis-blackhole' ? topology.redisFault! : topology.postgresFault;
      record('start');
      proxy.swallow();
      await holdFor(fault.holdMs, heal);
      if (cut) proxy.reset();
      else proxy.deliver();
      return record('end');
    }
    case 'postgres-cut':
      record('start');
      topology.postgresFault.cut();
      await holdFor(fault.holdMs, heal);
      topology.postgresFault.heal();
      return record('end');
    case 'postgres-lock': {
      const sql = topology.sql();
      try {
        await sql.begin(async (tx) => {
          await tx.unsafe(`LOCK TABLE ${fault.variant} IN ACCESS EXCLUSIVE MODE`);
          record('start');
          await holdFor(fault.holdMs, heal);
        });
      } finally {
        await sql.end();
      }
      return record('end');
    }
    case 'redis-maxmemory':
      record('start');
      await setMaxmemory(topology, 'full');
      await holdFor(fault.holdMs, heal);
      await setMaxmemory(topology, 'unlimited');
      return record('end');
    case 'master-kill': {
      const masters = (await topology.cluster!.masters()).sort((a, b) => a.port - b.port);
      const victim = masters[fault.target % masters.length]!;
      target = `master-${victim.port}`;
      record('start');
      await topology.cluster!.kill(victim.port);
      await holdFor(fault.holdMs, heal);
      // Its replica takes over (node timeout 1 s; longer on a loaded machine). A node restarted
      // before that comes back empty as the master of its slots: their data is lost, which is a
      // Redis restart with its data lost, recorded as one.
      const failedOver = await topology.cluster!.healthy(FAILOVER_MS).then(() => true, () => false);
      if (!failedOver) history.record({ type: 'fault', phase: 'start', id: fault.id, kind: 'redis-restart', target });
      await topology.cluster!.restart(victim.port);
      if (!failedOver) history.record({ type: 'fault', phase: 'end', id: fault.id, kind: 'redis-restart', target });
      await topology.cluster!.healthy(30_000);
      return record('end');
    }
    case 'slow-network':
      record('start');
      for (const link of instance.links) link.delayMs = Number(fault.variant);
      await holdFor(fault.holdMs, heal);
      for (const link of instance.links) link.delayMs = 0;
      return record('end');
  }
}

/** How long a replica may take to replace a killed master before the master is restarted anyway. */
const FAILOVER_MS = 90_000;

/** How many times a supervisor starts a server that exits at start-up, a second apart, before giving up. */
const START_ATTEMPTS = 90;

/**
 * Starts `instance` again as a supervisor (systemd, Kubernetes) would: a process that exits at
 * start-up is started again a second later. Each refusal is recorded as a log line of the
 * server (the checker reports it: a server should start while a backend is down).
 */
async function restart(instance: Instance, history: HistoryWriter): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await instance.start();
    } catch (error) {
      const line = (error as Error).message.replace(/^the server exited with \d+: /, '').split('\n')[0]!.slice(0, 300);
      history.record({ type: 'log', server: instance.index, line: `start-up refused (attempt ${attempt}): ${line}` });
      if (attempt >= START_ATTEMPTS) throw error;
      await delay(1_000);
    }
  }
}

/** Every master past its memory limit, or unlimited again. */
async function setMaxmemory(topology: Topology, to: 'full' | 'unlimited'): Promise<void> {
  const ports = topology.cluster ? (await topology.cluster.masters()).map((m) => m.port) : [topology.redis!.port];
  for (const port of ports) {
    if (to === 'unlimited') {
      await topology.command(port, 'CONFIG', 'SET', 'maxmemory', '0');
      continue;
    }
    // Below what is used: with noeviction every command that may grow memory is refused (OOM).
    const used = Number(/used_memory:(\d+)/.exec(String(await topology.command(port, 'INFO', 'memory')))?.[1] ?? 0);
    await topology.command(port, 'CONFIG', 'SET', 'maxmemory', String(Math.max(1, Math.floor(used / 2))));
  }
}
