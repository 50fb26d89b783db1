/**
 * Poll: requests/s and latency of `GET /api/ai/progress/:bookId` (Redis holds the book), plain
 * and with If-None-Match (304), against B0 and B1; the same poll with a token, against a server
 * with authentication on (the verified token is cached, the tenant checked from memory); and
 * the database statements the poll path made meanwhile, counted by the Postgres proxy (must be
 * 0 while Redis is up).
 */
import { SignJWT } from 'jose';
import { readdirSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { runLoad } from '../load/wrk.js';
import type { LoadResult } from '../load/wrk.js';
import { summarizeProfile } from '../support/cpu-profile.js';
import type { ProfileSummary } from '../support/cpu-profile.js';
import { bookId, seedBooks } from '../support/fixtures.js';
import { diffCounts } from '../support/pg-proxy.js';
import type { PgCounts } from '../support/pg-proxy.js';
import type { Plan } from '../support/plan.js';
import { cpuMeter } from '../support/proc.js';
import { HOST, startBaseline, startServer } from '../support/targets.js';
import type { BenchContext, Target } from '../support/targets.js';

export interface PollRun extends LoadResult {
  /** b0-token: B0 sent the same Authorization header as server-token (B0 ignores it). */
  target: 'server' | 'server-token' | 'b0' | 'b0-token' | 'b1';
  notModified: boolean;
  /** CPU of the target during the run, % of one core. */
  cpuPercent: number;
  /** The machine's 1-minute load average at the end of the run. */
  loadAverage: number;
}

export interface PollResult {
  /** The median run of each target and path. */
  runs: PollRun[];
  /** Every run, in the order they ran (targets alternate within each repetition). */
  samples: PollRun[];
  /** Statements the server sent to Postgres during its poll runs. */
  database: PgCounts;
  profile: ProfileSummary | null;
}

/** The tenant and secret of the "poll with token" run. */
const TOKEN_TENANT = 'bench';
const TOKEN_SECRET = 'bench-secret-of-at-least-32-bytes!!';

export async function runPoll(ctx: BenchContext, plan: Plan): Promise<PollResult> {
  const prefix = `${ctx.runPrefix}poll:`;
  const books = { prefix: 'poll-', first: 0, count: 1 };
  const book = bookId(books, 0);
  await seedBooks(ctx.redis, prefix, books);
  const tenantBooks = { prefix: 'poll-tenant-', first: 0, count: 1 };
  await seedBooks(ctx.redis, prefix, tenantBooks, TOKEN_TENANT);
  const tenantPath = `/api/ai/progress/${bookId(tenantBooks, 0)}`;
  const path = `/api/ai/progress/${book}`;
  const runs: PollRun[] = [];
  const targets: Target[] = [];
  try {
    // Both servers run side by side, so the runs with and without a token alternate in one window.
    // One after the other: the first one migrates the new database.
    const server = await startServer(ctx, { keyPrefix: prefix });
    targets.push(server);
    const secured = await startServer(ctx, { keyPrefix: prefix, env: { AUTH_JWT_SECRET: TOKEN_SECRET }, name: 'server-token' });
    targets.push(secured);
    const first = await fetch(`http://${HOST}:${server.port}${path}`);
    const body = await first.text();
    const etag = first.headers.get('etag') ?? '';
    if (first.status !== 200) throw new Error(`poll of the seeded book answered ${first.status}: ${body}`);
    const b0 = await startBaseline(ctx, 'b0', prefix, { BENCH_BODY: body, BENCH_ETAG: etag, BENCH_HEADERS: JSON.stringify(servedHeaders(first.headers)) });
    const b1 = await startBaseline(ctx, 'b1', prefix);
    targets.push(b0, b1);
    const token = await new SignJWT({ tenant: TOKEN_TENANT })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('bench-user')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(TOKEN_SECRET));
    const authorization = { Authorization: `Bearer ${token}` };
    const check = await fetch(`http://${HOST}:${secured.port}${tenantPath}`, { headers: authorization });
    if (check.status !== 200) throw new Error(`poll with a token answered ${check.status}: ${await check.text()}`);

    const samples: PollRun[] = [];
    const load = async (target: Target, notModified: boolean, as: PollRun['target'] = target.kind as PollRun['target'], headers: Record<string, string> = {}, at = path) => {
      const meter = cpuMeter(target.pid);
      const result = await runLoad(`http://${HOST}:${target.port}${at}`, {
        connections: plan.poll.connections,
        durationSec: plan.poll.durationSec,
        headers: notModified ? { ...headers, 'If-None-Match': etag } : headers,
      });
      samples.push({ ...result, target: as, notModified, cpuPercent: meter.stop(), loadAverage: loadavg()[0] as number });
    };
    // A short warm-up each, so JIT compilation is not measured.
    for (const target of [server, b0, b1]) await runLoad(`http://${HOST}:${target.port}${path}`, { connections: plan.poll.connections, durationSec: 1 });
    await runLoad(`http://${HOST}:${secured.port}${tenantPath}`, { connections: plan.poll.connections, durationSec: 1, headers: authorization });
    const before = ctx.proxy.counts();
    for (let rep = 0; rep < plan.poll.repeats; rep++) {
      await load(b0, false);
      await load(server, false);
      await load(secured, false, 'server-token', authorization, tenantPath);
      // B0 sent the same token: what the header's bytes cost a server that does nothing with it.
      await load(b0, false, 'b0-token', authorization);
      await load(b1, false);
      await load(server, true);
      if (plan.poll.baselinesNotModified) {
        await load(b0, true);
        await load(b1, true);
      }
    }
    const database = diffCounts(ctx.proxy.counts(), before);
    runs.push(...medians(samples));
    await Promise.all(targets.map((target) => target.stop()));
    targets.length = 0;
    const profile = plan.poll.profile ? await profileServer(ctx, plan, prefix, tenantPath, authorization) : null;
    return { runs, samples, database, profile };
  } finally {
    await Promise.all(targets.map((target) => target.stop()));
  }
}

/** Per target and path, the run with the median requests/s (the lower middle of an even count). */
function medians(samples: PollRun[]): PollRun[] {
  const groups = new Map<string, PollRun[]>();
  for (const run of samples) {
    const key = `${run.target}/${run.notModified}`;
    groups.set(key, [...(groups.get(key) ?? []), run]);
  }
  return [...groups.values()].map((group) => [...group].sort((x, y) => x.requestsPerSecond - y.requestsPerSecond)[Math.floor((group.length - 1) / 2)] as PollRun);
}

/** Headers B0 repeats as the server sent them (those Node writes itself, and the entity's, left out). */
const OWN_HEADERS = new Set(['date', 'connection', 'keep-alive', 'content-length', 'content-type', 'etag', 'transfer-encoding']);

function servedHeaders(headers: Headers): Record<string, string> {
  const kept: Record<string, string> = {};
  headers.forEach((value, name) => {
    if (!OWN_HEADERS.has(name)) kept[name] = value;
  });
  return kept;
}

/** A separate run of the token server under `--cpu-prof` (sampling slows it, so its figures are not kept). */
async function profileServer(ctx: BenchContext, plan: Plan, prefix: string, path: string, headers: Record<string, string>): Promise<ProfileSummary> {
  const dir = join(ctx.logDir, 'profile');
  const spawnedAt = performance.now();
  const server = await startServer(ctx, { keyPrefix: prefix, cpuProfileDir: dir, name: 'server-profiled', env: { AUTH_JWT_SECRET: TOKEN_SECRET } });
  let window: { fromMs: number; toMs: number };
  try {
    const loadAt = performance.now() - spawnedAt;
    await runLoad(`http://${HOST}:${server.port}${path}`, { connections: plan.poll.connections, durationSec: plan.poll.durationSec, headers });
    window = { fromMs: loadAt, toMs: performance.now() - spawnedAt };
  } finally {
    await server.stop();
  }
  // The main thread's profile is the largest; workers (if any) write their own.
  const files = readdirSync(dir).filter((name) => name.endsWith('.cpuprofile')).sort((x, y) => statSync(join(dir, y)).size - statSync(join(dir, x)).size);
  const file = files[0];
  if (!file) throw new Error(`no .cpuprofile written in ${dir}`);
  // The profile starts a little after the spawn: the window errs towards the load's end, never into start-up.
  return summarizeProfile(join(dir, file), ctx.root, window);
}
