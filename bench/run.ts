/**
 * `npm run bench [-- --quick] [-- --profile | --no-profile]`: starts Redis-backed targets and
 * load generators as child processes, runs the poll, fan-out, database and embedded scenarios,
 * prints PASS/FAIL per floor and writes bench/results/<date>.json and .md (not kept in git). Everything it starts, it stops: on
 * success, on error and on Ctrl-C. Needs Redis on 127.0.0.1:6379 and Postgres on :5432.
 *
 * `--only poll [--repeats N] [--no-profile]` runs the poll scenario alone and prints its tables.
 *
 * For experiments, `--only fanout [--sizes 10000] [--targets server,b3] [--shapes a]
 * [--loop-stats] [--server-env KEY=VALUE,...] [--server-cpu-prof DIR] [--server-publish publish]` runs the fan-out scenario alone and prints its
 * table (no floors, no results file); (a) always runs, `--shapes a` leaves (b) out.
 *
 * `--only deltas [--sizes 1000] [--repeat]` runs the delta scenario alone (bench/scenarios/deltas.ts):
 * bytes and server CPU per delivered event, without and with `delta=merge-patch`.
 *
 * `--only cluster [--quick]` runs the Redis Cluster scenario alone: the same commit load
 * on one Redis and on three masters, each on redis-servers it starts itself, with its floors.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { killAllChildren } from './support/children.js';
import { REDIS_URL, deleteKeys } from './support/fixtures.js';
import { checkFloors } from './support/floors.js';
import { PgProxy } from './support/pg-proxy.js';
import { makePlan } from './support/plan.js';
import type { Plan, PlanOverrides } from './support/plan.js';
import { POSTGRES_HOST, POSTGRES_PORT, createDatabase, dropDatabase } from './support/postgres.js';
import { embeddedTable, fanoutOnlyMarkdown, pollTable, resultStem, toMarkdown, writeReport } from './support/report.js';
import type { Machine, RunReport } from './support/report.js';
import { runDatabase } from './scenarios/database.js';
import { runEmbedded } from './scenarios/embedded.js';
import { deltasTable, runDeltas } from './scenarios/deltas.js';
import { runFanout } from './scenarios/fanout.js';
import { runPoll } from './scenarios/poll.js';
import { clusterMarkdown, runCluster } from './scenarios/cluster.js';
import { SwarmPool } from './load/swarm-pool.js';
import type { BenchContext } from './support/targets.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS_DIR = join(ROOT, 'bench', 'results');
/** The whole run stops after this, whatever it is doing. */
const RUN_LIMIT_MS = { quick: 5 * 60_000, full: 25 * 60_000 };

const args = process.argv.slice(2);
const quick = args.includes('--quick');
/** `--only cluster`: one Redis against a three-master cluster, on Redis servers of its own (not 6379). */
const clusterOnly = args.join(' ').includes('--only cluster');
/** Keep the children's logs (e.g. the server's `--trace-gc` output) after a run that completed. */
const keepLogs = args.includes('--keep-logs');
const profile = args.includes('--profile') ? true : args.includes('--no-profile') ? false : null;
const plan = makePlan(quick, profile, clusterOnly ? {} : parseOverrides(args));

/** The value after `--name`, split on commas; undefined when the flag is absent. */
function listArg(name: string): string[] | undefined {
  const at = args.indexOf(`--${name}`);
  if (at < 0) return undefined;
  const value = args[at + 1];
  if (value === undefined || value.startsWith('--')) throw new Error(`--${name} needs a value`);
  return value.split(',').filter((v) => v !== '');
}

function parseOverrides(argv: string[]): PlanOverrides {
  const overrides: PlanOverrides = { loopStats: argv.includes('--loop-stats') };
  const only = listArg('only');
  if (only) {
    if (!['fanout', 'embedded', 'deltas', 'poll'].includes(only.join())) throw new Error(`--only takes "fanout", "embedded", "deltas" or "poll"; got ${only.join()}`);
    overrides.only = only.join() as 'fanout' | 'embedded' | 'deltas' | 'poll';
  }
  const repeats = listArg('repeats')?.map(Number);
  if (repeats) {
    if (repeats.length !== 1 || !Number.isInteger(repeats[0]) || (repeats[0] as number) < 1) throw new Error('--repeats takes a count, e.g. 5');
    overrides.repeats = repeats[0] as number;
  }
  const sizes = listArg('sizes')?.map(Number);
  if (sizes) {
    if (sizes.length === 0 || !sizes.every((n) => Number.isInteger(n) && n > 0)) throw new Error('--sizes takes client counts, e.g. 5000,10000');
    overrides.sizes = sizes;
  }
  const targets = listArg('targets');
  if (targets) {
    const known: Plan['fanout']['targets'] = ['server', 'b3', 'socketio'];
    const bad = targets.filter((t) => !(known as string[]).includes(t));
    if (bad.length > 0 || targets.length === 0) throw new Error(`--targets takes ${known.join(', ')}; got ${targets.join()}`);
    overrides.targets = targets as Plan['fanout']['targets'];
  }
  const shapes = listArg('shapes');
  if (shapes) {
    if (shapes.length === 0 || !shapes.every((s) => s === 'a' || s === 'b' || s === 'c')) throw new Error('--shapes takes a, b, c or a list of them');
    overrides.shapes = shapes as Plan['fanout']['shapes'];
  }
  const serverPublish = listArg('server-publish')?.join(',');
  if (serverPublish !== undefined) {
    if (serverPublish !== 'commit' && serverPublish !== 'publish') throw new Error(`--server-publish takes commit or publish; got ${serverPublish}`);
    overrides.serverPublish = serverPublish;
  }
  const nodeArgsAt = argv.indexOf('--server-node-args');
  if (nodeArgsAt >= 0) {
    // One value holding flags of their own, so not split on commas: --server-node-args "--trace-gc --trace-gc-nvp".
    const value = argv[nodeArgsAt + 1];
    if (value === undefined || value.trim() === '') throw new Error('--server-node-args needs a value, e.g. "--trace-gc"');
    overrides.serverNodeArgs = value.split(' ').filter((v) => v !== '');
  }
  const profileDir = listArg('server-cpu-prof');
  if (profileDir) overrides.serverCpuProfileDir = profileDir.join(',');
  const env = listArg('server-env');
  if (env) {
    overrides.serverEnv = Object.fromEntries(
      env.map((pair) => {
        const eq = pair.indexOf('=');
        if (eq <= 0) throw new Error(`--server-env takes KEY=VALUE pairs; got ${pair}`);
        return [pair.slice(0, eq), pair.slice(eq + 1)];
      }),
    );
  }
  return overrides;
}
const started = performance.now();
/** Drops what the run created outside its processes (database, Redis keys); the same promise for every caller. */
let cleanUp: () => Promise<void> = async () => {};
const log = (line: string) => console.log(`[bench ${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);

function machine(): Machine {
  return {
    node: process.version,
    cores: availableParallelism(),
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
  };
}

function dropLogs(logDir: string): void {
  if (keepLogs) log(`child logs kept in ${logDir}`);
  else rmSync(logDir, { recursive: true, force: true });
}

async function main(): Promise<number> {
  const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const logDir = mkdtempSync(join(tmpdir(), `booksai-bench-${runId}-`));
  mkdirSync(RESULTS_DIR, { recursive: true });
  const databaseName = `booksai_bench_${runId}`;
  const runPrefix = `bench:${runId}:`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const proxy = new PgProxy(POSTGRES_HOST, POSTGRES_PORT);
  let swarm: SwarmPool | null = null;
  let databaseCreated = false;
  log(`${plan.only ? `${plan.only}-only` : plan.quick ? 'quick' : 'full'} run ${runId}; child logs in ${logDir}`);
  let cleaning: Promise<void> | null = null;
  cleanUp = () => (cleaning ??= (async () => {
    await swarm?.stop().catch(() => {});
    killAllChildren();
    await proxy.close().catch(() => {});
    if (databaseCreated) await dropDatabase(databaseName).catch((error: Error) => log(`could not drop ${databaseName}: ${error.message}`));
    await deleteKeys(redis, runPrefix).catch(() => {});
    redis.disconnect();
  })());
  try {
    await redis.ping();
    await createDatabase(databaseName);
    databaseCreated = true;
    const proxyPort = await proxy.listen();
    const ctx: BenchContext = { root: ROOT, logDir, runPrefix, redis, databaseName, proxy, proxyPort, quick };
    if (plan.only === 'embedded') {
      console.log(`\n${embeddedTable(await runEmbedded(ctx, plan)).join('\n')}`);
      dropLogs(logDir);
      return 0;
    }
    if (plan.only === 'poll') {
      log(`poll: B0, B1 and the servers under wrk, ${plan.poll.repeats} rounds`);
      console.log(`\n${pollTable(await runPoll(ctx, plan)).join('\n')}`);
      dropLogs(logDir);
      return 0;
    }
    if (plan.only === 'deltas') {
      const clients = args.includes('--sizes') ? Math.max(...plan.fanout.sizes) : 1_000;
      console.log(`\n${deltasTable(await runDeltas(ctx, clients, args.includes('--repeat') ? 2 : 1, log)).join('\n')}`);
      dropLogs(logDir);
      return 0;
    }
    swarm = SwarmPool.start(ctx, Math.max(...plan.fanout.sizes));

    if (plan.only === 'fanout') {
      const fanout = await runFanout(ctx, plan, swarm, log);
      console.log(`\n${fanoutOnlyMarkdown(fanout)}`);
      dropLogs(logDir);
      return 0;
    }
    log('poll: B0, B1 and the server under wrk');
    const poll = await runPoll(ctx, plan);
    const fanout = await runFanout(ctx, plan, swarm, log);
    log(`database: ${plan.database.books} books updated ${plan.database.hz}/s for ${plan.database.durationMs / 1000} s`);
    const database = await runDatabase(ctx, plan);
    log('embedded: npm run build, then node dist/main.js without Redis or Postgres');
    const embedded = await runEmbedded(ctx, plan);

    const figures = { poll, fanout, database, embedded };
    const report: RunReport = {
      date: new Date().toISOString(),
      mode: quick ? 'quick' : 'full',
      machine: machine(),
      durationSec: Math.round((performance.now() - started) / 1000),
      ...figures,
      floors: checkFloors(figures),
    };
    if (poll.profile) {
      const kept = join(RESULTS_DIR, `${resultStem(report.date)}-poll.cpuprofile`);
      copyFileSync(poll.profile.file, kept);
      poll.profile.file = relative(ROOT, kept);
    }
    const files = writeReport(RESULTS_DIR, report);
    console.log(`\n${toMarkdown(report)}`);
    for (const f of report.floors) console.log(`${f.pass ? 'PASS' : 'FAIL'}  ${f.name}: ${f.measured} (limit ${f.limit})${f.note ? ` [${f.note}]` : ''}`);
    log(`wrote ${files.json} and ${files.markdown}`);
    dropLogs(logDir);
    return 0;
  } finally {
    await cleanUp();
  }
}

/** Kills the children at once, then cleans up for at most a few seconds. */
function stopNow(reason: string): void {
  console.error(`bench: ${reason}; stopping every child process`);
  killAllChildren();
  setTimeout(() => process.exit(1), 10_000).unref();
  void cleanUp().finally(() => process.exit(1));
}

process.on('SIGINT', () => stopNow('interrupted'));
process.on('SIGTERM', () => stopNow('terminated'));
process.on('exit', () => killAllChildren());
setTimeout(() => stopNow(`still running after ${RUN_LIMIT_MS[quick ? 'quick' : 'full'] / 60_000} min`), RUN_LIMIT_MS[quick ? 'quick' : 'full']).unref();

async function clusterMain(): Promise<number> {
  const result = await runCluster({ books: quick ? 200 : 500, rate: quick ? 1_000 : 3_000, durationMs: quick ? 5_000 : 15_000, repeats: quick ? 1 : 3 }, log);
  console.log(`\n${clusterMarkdown(result)}`);
  return result.floors.every((f) => f.pass) ? 0 : 1;
}

(clusterOnly ? clusterMain() : main()).then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(error.stack ?? error.message);
    process.exit(1);
  },
);
