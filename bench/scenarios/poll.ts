/**
 * Poll: requests/s and latency of `GET /api/ai/progress/:bookId` (Redis holds the book), plain
 * and with If-None-Match (304), against B0 and B1; the same poll with a token, against a server
 * with authentication on (the verified token is cached, the tenant checked from memory); and
 * the database statements the poll path made meanwhile, counted by the Postgres proxy (must be
 * 0 while Redis is up).
 */
import { SignJWT } from 'jose';
import { readdirSync } from 'node:fs';
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
  target: 'server' | 'server-token' | 'b0' | 'b1';
  notModified: boolean;
  /** CPU of the target during the run, % of one core. */
  cpuPercent: number;
}

export interface PollResult {
  runs: PollRun[];
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
    const server = await startServer(ctx, { keyPrefix: prefix });
    targets.push(server);
    const first = await fetch(`http://${HOST}:${server.port}${path}`);
    const body = await first.text();
    const etag = first.headers.get('etag') ?? '';
    if (first.status !== 200) throw new Error(`poll of the seeded book answered ${first.status}: ${body}`);
    const b0 = await startBaseline(ctx, 'b0', prefix, { BENCH_BODY: body, BENCH_ETAG: etag });
    const b1 = await startBaseline(ctx, 'b1', prefix);
    targets.push(b0, b1);

    const load = async (target: Target, notModified: boolean, as: PollRun['target'] = target.kind as PollRun['target'], headers: Record<string, string> = {}, at = path) => {
      const meter = cpuMeter(target.pid);
      const result = await runLoad(`http://${HOST}:${target.port}${at}`, {
        connections: plan.poll.connections,
        durationSec: plan.poll.durationSec,
        headers: notModified ? { ...headers, 'If-None-Match': etag } : headers,
      });
      runs.push({ ...result, target: as, notModified, cpuPercent: meter.stop() });
    };
    // A short warm-up each, so JIT compilation is not measured.
    for (const target of [server, b0, b1]) await runLoad(`http://${HOST}:${target.port}${path}`, { connections: plan.poll.connections, durationSec: 1 });
    await load(b0, false);
    await load(b1, false);
    const before = ctx.proxy.counts();
    await load(server, false);
    await load(server, true);
    const database = diffCounts(ctx.proxy.counts(), before);
    await server.stop();

    // The same poll against a server with authentication on, each request with the user's token.
    const secured = await startServer(ctx, { keyPrefix: prefix, env: { AUTH_JWT_SECRET: TOKEN_SECRET }, name: 'server-token' });
    targets.push(secured);
    const token = await new SignJWT({ tenant: TOKEN_TENANT })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('bench-user')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(TOKEN_SECRET));
    const authorization = { Authorization: `Bearer ${token}` };
    const check = await fetch(`http://${HOST}:${secured.port}${tenantPath}`, { headers: authorization });
    if (check.status !== 200) throw new Error(`poll with a token answered ${check.status}: ${await check.text()}`);
    await runLoad(`http://${HOST}:${secured.port}${tenantPath}`, { connections: plan.poll.connections, durationSec: 1, headers: authorization });
    await load(secured, false, 'server-token', authorization, tenantPath);
    if (plan.poll.baselinesNotModified) {
      await load(b0, true);
      await load(b1, true);
    }
    await Promise.all(targets.map((target) => target.stop()));
    targets.length = 0;
    const profile = plan.poll.profile ? await profileServer(ctx, plan, prefix, path) : null;
    return { runs, database, profile };
  } finally {
    await Promise.all(targets.map((target) => target.stop()));
  }
}

/** A separate server run under `--cpu-prof` (sampling slows it, so its figures are not kept). */
async function profileServer(ctx: BenchContext, plan: Plan, prefix: string, path: string): Promise<ProfileSummary> {
  const dir = join(ctx.logDir, 'profile');
  const spawnedAt = performance.now();
  const server = await startServer(ctx, { keyPrefix: prefix, cpuProfileDir: dir, name: 'server-profiled' });
  let window: { fromMs: number; toMs: number };
  try {
    const loadAt = performance.now() - spawnedAt;
    await runLoad(`http://${HOST}:${server.port}${path}`, { connections: plan.poll.connections, durationSec: plan.poll.durationSec });
    window = { fromMs: loadAt, toMs: performance.now() - spawnedAt };
  } finally {
    await server.stop();
  }
  const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile written in ${dir}`);
  // The profile starts a little after the spawn: the window errs towards the load's end, never into start-up.
  return summarizeProfile(join(dir, file), ctx.root, window);
}
