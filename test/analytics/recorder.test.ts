import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analytics, bookTimeline, recentCompletedRuns } from '../../src/analytics/queries.js';
import { TimelineRecorder } from '../../src/analytics/recorder.js';
import type { BookProgress } from '../../src/progress/schema.js';
import { migrateDatabase, openDatabase } from '../../src/store/database.js';
import type { Database } from '../../src/store/database.js';
import * as schema from '../../src/store/schema.js';
import { createTestDatabase } from '../support/backends.js';
import { simulateRun } from './runs.js';

interface Backend {
  db: Database;
  /** Statements sent since the last reset (null: this backend cannot count them). */
  statements: { count: number } | null;
  close(): Promise<void>;
}

async function postgresBackend(): Promise<Backend> {
  const database = await createTestDatabase();
  await migrateDatabase(database.url);
  const client = postgres(database.url, { max: 2, onnotice: () => {}, fetch_types: false });
  const statements = { count: 0 };
  const db = drizzle(client, { schema, logger: { logQuery: () => void statements.count++ } }) as unknown as Database;
  return {
    db,
    statements,
    close: async () => {
      await client.end();
      await database.drop();
    },
  };
}

async function pgliteBackend(): Promise<Backend> {
  const folder = mkdtempSync(join(tmpdir(), 'analytics-'));
  const handle = await openDatabase(null, folder, 2_000);
  return {
    db: handle.db,
    statements: null,
    close: async () => {
      await handle.close();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

const T0 = Date.UTC(2026, 0, 5, 10, 0, 0);
const HOUR = 3_600_000;

/** js percentile_cont: linear interpolation between the closest ranks. */
function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = q * (sorted.length - 1);
  const low = Math.floor(rank);
  return sorted[low]! + (sorted[Math.min(low + 1, sorted.length - 1)]! - sorted[low]!) * (rank - low);
}

/** Interleaves several books' states as a feed would, and cuts them into batches. */
function batches(runs: BookProgress[][], size: number): BookProgress[][] {
  const feed: BookProgress[] = [];
  for (let i = 0; runs.some((r) => i < r.length); i++) for (const r of runs) if (i < r.length) feed.push(r[i]!);
  const out: BookProgress[][] = [];
  for (let i = 0; i < feed.length; i += size) out.push(feed.slice(i, i + size));
  return out;
}

describe.each([
  ['Postgres', postgresBackend],
  ['PGlite', pgliteBackend],
])('analytics on %s', (_name, open) => {
  let backend: Backend;
  let recorder: TimelineRecorder;
  // Ten completed runs of acme (section time 100..1000 ms), two failed runs of globex.
  const completed = Array.from({ length: 10 }, (_, i) =>
    simulateRun(`done-${i}`, { chapters: 2, sections: 2, stepMs: 1_000, sectionMs: 100 * (i + 1), start: T0 + i * 60_000, tenant: 'acme' }),
  );
  const failed = Array.from({ length: 2 }, (_, i) =>
    simulateRun(`failed-${i}`, { chapters: 3, sections: 2, stepMs: 2_000, sectionMs: 100, start: T0 + HOUR + i * 1_000, tenant: 'globex', failAtChapter: 2 }),
  );

  beforeAll(async () => {
    backend = await open();
    recorder = new TimelineRecorder(backend.db);
    for (const batch of batches([...completed, ...failed], 25)) {
      if (backend.statements) backend.statements.count = 0;
      await recorder.record(batch);
      // One read of the cursors, one insert of the spans, one upsert of the runs: never a write per update.
      if (backend.statements) expect(backend.statements.count).toBeLessThanOrEqual(3);
    }
  }, 120_000);

  afterAll(async () => {
    await backend?.close();
  });

  it('records each run with its real step, chapter and section durations', async () => {
    const timeline = await bookTimeline(backend.db, 'done-3');
    expect(timeline).toMatchObject({ bookId: 'done-3', tenant: 'acme', status: 'COMPLETE', startedAt: T0 + 180_000, durationMs: 5_000 + 1_600, error: null });
    expect(timeline!.steps.map((s) => [s.step, s.durationMs, s.exact])).toEqual([
      ['PLANNING', 1_000, true],
      ['RESEARCH', 1_000, true],
      ['OUTLINE', 1_000, true],
      ['STRUCTURE', 1_000, true],
      ['CHAPTERS', 1_600, true],
      ['PROOFREADING', 1_000, true],
    ]);
    expect(timeline!.chapters.map((c) => [c.chapter, c.durationMs, c.sections.map((s) => s.durationMs)])).toEqual([
      [1, 800, [400, 400]],
      [2, 800, [400, 400]],
    ]);
  });

  it('shows a failed run with its error and the step that was running, unfinished', async () => {
    const timeline = await bookTimeline(backend.db, 'failed-1');
    expect(timeline).toMatchObject({ status: 'ERROR', error: 'chapter 2 failed', tenant: 'globex' });
    expect(timeline!.steps.at(-1)).toMatchObject({ step: 'CHAPTERS', endedAt: null });
    expect(timeline!.chapters.map((c) => [c.chapter, c.durationMs])).toEqual([
      [1, 200],
      [2, null],
    ]);
    expect(await bookTimeline(backend.db, 'no-such-book')).toBeNull();
  });

  it('writes nothing twice when a batch is retried', async () => {
    const all = [...completed, ...failed].flat();
    const before = await analytics(backend.db, { since: T0 - HOUR, until: T0 + 3 * HOUR });
    const again = await recorder.record(all.slice(0, 40));
    expect(again.spans).toEqual([]);
    expect(await analytics(backend.db, { since: T0 - HOUR, until: T0 + 3 * HOUR })).toEqual(before);
  });

  it('answers the aggregates of a window: counts, rates, percentiles, throughput', async () => {
    const result = await analytics(backend.db, { since: T0 - HOUR, until: T0 + 3 * HOUR });
    expect(result.runs).toEqual({ started: 12, completed: 10, failed: 2, running: 0, completionRate: 10 / 12, failureRate: 2 / 12 });
    const runMs = completed.map((_, i) => 5_000 + 4 * 100 * (i + 1));
    expect(result.runDuration.count).toBe(10);
    expect(result.runDuration.p50).toBeCloseTo(percentile(runMs, 0.5));
    expect(result.runDuration.p90).toBeCloseTo(percentile(runMs, 0.9));
    const chapters = result.steps.find((s) => s.step === 'CHAPTERS')!;
    expect(chapters.count).toBe(10); // failed runs never finished CHAPTERS
    expect(chapters.p90).toBeCloseTo(percentile(completed.map((_, i) => 400 * (i + 1)), 0.9));
    const planning = result.steps.find((s) => s.step === 'PLANNING')!;
    expect(planning).toMatchObject({ count: 12, p50: 1_000, p90: percentile([...Array(10).fill(1_000), 2_000, 2_000], 0.9) });
    // 20 chapters of completed runs + chapter 1 of each failed run.
    const chapterMs = [...completed.flatMap((_, i) => [200 * (i + 1), 200 * (i + 1)]), 200, 200];
    expect(result.chapter.count).toBe(22);
    expect(result.chapter.p50).toBeCloseTo(percentile(chapterMs, 0.5));
    // Failed runs: both sections of chapter 1; the one running at the ERROR never ended.
    expect(result.section.count).toBe(40 + 2 * 2);
    expect(result.throughput.bucketMs).toBe(300_000);
    const total = result.throughput.buckets.reduce((n, b) => ({ completed: n.completed + b.completed, failed: n.failed + b.failed }), { completed: 0, failed: 0 });
    expect(total).toEqual({ completed: 10, failed: 2 });
    expect(result.throughput.buckets[0]).toEqual({ start: T0, completed: 5, failed: 0 });
  });

  it('filters by tenant and window', async () => {
    const acme = await analytics(backend.db, { since: T0 - HOUR, until: T0 + 3 * HOUR, tenant: 'acme' });
    expect(acme.runs).toMatchObject({ started: 10, completed: 10, failed: 0 });
    const globex = await analytics(backend.db, { since: T0 - HOUR, until: T0 + 3 * HOUR, tenant: 'globex' });
    expect(globex.runs).toMatchObject({ started: 2, failed: 2 });
    expect(globex.steps.find((s) => s.step === 'PLANNING')).toMatchObject({ count: 2, p50: 2_000 });
    const early = await analytics(backend.db, { since: T0, until: T0 + 5 * 60_000 });
    expect(early.runs.started).toBe(5);
    const none = await analytics(backend.db, { since: T0 + 10 * HOUR, until: T0 + 11 * HOUR });
    expect(none.runs).toMatchObject({ started: 0, completionRate: null });
    expect(none.runDuration).toEqual({ count: 0, p50: null, p90: null });
  });

  it('gives the ETA model the recent completed runs with their step durations', async () => {
    const history = await recentCompletedRuns(backend.db, 3);
    expect(history).toHaveLength(3);
    expect(history[0]).toEqual({
      totalChapters: 2,
      totalSections: 2,
      durationMs: 5_000 + 4_000,
      steps: { PLANNING: 1_000, RESEARCH: 1_000, OUTLINE: 1_000, STRUCTURE: 1_000, CHAPTERS: 4_000, PROOFREADING: 1_000 },
    });
  });
});
