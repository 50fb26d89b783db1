/**
 * Database: `books` books each updated `hz` times a second through the server's Redis commit
 * for `durationMs`; the Postgres proxy counts what the snapshotter sends per snapshot interval.
 */
import { Child } from '../support/children.js';
import { seedBooks } from '../support/fixtures.js';
import { diffCounts } from '../support/pg-proxy.js';
import type { PgCounts } from '../support/pg-proxy.js';
import type { Plan } from '../support/plan.js';
import { booksTableStats } from '../support/postgres.js';
import { startServer } from '../support/targets.js';
import type { BenchContext } from '../support/targets.js';

export interface DatabaseResult {
  books: number;
  durationMs: number;
  snapshotIntervalMs: number;
  /** Snapshot rounds that fell in the window. */
  rounds: number;
  published: number;
  /** What the server sent, from the proxy. */
  counts: PgCounts;
  upsertsPerRound: number;
  rowsPerRound: number;
  statementsPerRound: number;
  /** Postgres' own table counters over the same run (including the shutdown snapshot). */
  table: { inserted: number; updated: number; seqScans: number; indexScans: number };
}

/** Margin after a round's boundary for its snapshot to finish. */
const ROUND_MARGIN_MS = 1_000;

export async function runDatabase(ctx: BenchContext, plan: Plan): Promise<DatabaseResult> {
  const { books: count, hz, durationMs, snapshotIntervalMs: interval } = plan.database;
  const prefix = `${ctx.runPrefix}db:`;
  const books = { prefix: 'db-', first: 0, count };
  await seedBooks(ctx.redis, prefix, books);
  const server = await startServer(ctx, { keyPrefix: prefix, env: { SNAPSHOT_INTERVAL_MS: String(interval) } });
  const publisher = new Child({
    name: 'publisher-db',
    nodeArgs: ['--import', 'tsx', 'bench/load/publisher.ts'],
    cwd: ctx.root,
    logDir: ctx.logDir,
    env: { BENCH_PUBLISH_MODE: 'commit', BENCH_KEY_PREFIX: prefix },
  });
  try {
    await publisher.next('ready', 30_000);
    const tableBefore = await booksTableStats(ctx.databaseName);
    const before = ctx.proxy.counts();
    const startedAt = Date.now();
    const published = await publisher.request({ cmd: 'run', books, hz, durationMs }, 'published', durationMs + 60_000);
    // Let the round after the last update run, so every change is written by the schedule.
    const lastRoundDone = (Math.floor(Date.now() / interval) + 1) * interval + ROUND_MARGIN_MS;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, lastRoundDone - Date.now())));
    const stoppedAt = Date.now();
    const counts = diffCounts(ctx.proxy.counts(), before);
    await server.stop();
    const tableAfter = await booksTableStats(ctx.databaseName);
    const rounds = Math.max(1, Math.floor(stoppedAt / interval) - Math.floor(startedAt / interval));
    return {
      books: count,
      durationMs,
      snapshotIntervalMs: interval,
      rounds,
      published: Number(published.acked),
      counts,
      upsertsPerRound: counts.upserts / rounds,
      rowsPerRound: counts.rowsWritten / rounds,
      statementsPerRound: counts.statements / rounds,
      table: {
        inserted: tableAfter.inserted - tableBefore.inserted,
        updated: tableAfter.updated - tableBefore.updated,
        seqScans: tableAfter.seqScans - tableBefore.seqScans,
        indexScans: tableAfter.indexScans - tableBefore.indexScans,
      },
    };
  } finally {
    await Promise.all([publisher.stop(), server.stop()]);
  }
}
