import { and, asc, desc, eq, gte, lt, sql } from 'drizzle-orm';
import type { SQL } from 'drizzle-orm';
import type { Database } from '../store/database.js';
import { runSpans, runTimelines } from '../store/schema.js';
import { CursorSchema } from './timeline.js';
import type { Step } from '../progress/schema.js';

/** A span of a book's timeline; `endedAt` null: still running (or cut short by an error). */
export interface TimelineSpan {
  startedAt: number;
  endedAt: number | null;
  durationMs: number | null;
  exact: boolean;
}

export interface BookTimeline {
  bookId: string;
  tenant: string | null;
  startedAt: number;
  endedAt: number | null;
  durationMs: number | null;
  status: string;
  error: string | null;
  totalChapters: number;
  totalSections: number;
  steps: Array<TimelineSpan & { step: Step }>;
  chapters: Array<TimelineSpan & { chapter: number; sections: Array<TimelineSpan & { section: number }> }>;
}

/** The latest recorded run of a book with its steps and chapters in order; null: none recorded. No tenant check: the caller asks auth/ first. */
export async function bookTimeline(db: Database, bookId: string): Promise<BookTimeline | null> {
  const [run] = await db.select().from(runTimelines).where(eq(runTimelines.bookId, bookId)).orderBy(desc(runTimelines.startedAt)).limit(1);
  if (run === undefined) return null;
  const spans = await db
    .select()
    .from(runSpans)
    .where(and(eq(runSpans.bookId, bookId), eq(runSpans.runStartedAt, run.startedAt)))
    .orderBy(asc(runSpans.startedAt), asc(runSpans.chapter), asc(runSpans.section));
  const timeline: BookTimeline = {
    bookId,
    tenant: run.tenant,
    startedAt: run.startedAt.getTime(),
    endedAt: run.endedAt?.getTime() ?? null,
    durationMs: run.durationMs,
    status: run.status,
    error: run.error,
    totalChapters: run.totalChapters,
    totalSections: run.totalSections,
    steps: [],
    chapters: [],
  };
  const done = (s: typeof runSpans.$inferSelect): TimelineSpan => ({ startedAt: s.startedAt.getTime(), endedAt: s.endedAt.getTime(), durationMs: s.durationMs, exact: s.exact });
  const chapters = new Map<number, BookTimeline['chapters'][number]>();
  const chapter = (n: number) => {
    let found = chapters.get(n);
    if (found === undefined) chapters.set(n, (found = { chapter: n, startedAt: 0, endedAt: null, durationMs: null, exact: false, sections: [] }));
    return found;
  };
  for (const s of spans) {
    if (s.kind === 'step') timeline.steps.push({ step: s.step as Step, ...done(s) });
    else if (s.kind === 'chapter') Object.assign(chapter(s.chapter), done(s));
    else chapter(s.chapter).sections.push({ section: s.section, ...done(s) });
  }
  // What the last state shows running: started, not ended (unless the run ended COMPLETE).
  const cursor = CursorSchema.safeParse(run.cursor);
  if (cursor.success && run.status !== 'COMPLETE') {
    const open = (m: { at: number; exact: boolean }): TimelineSpan => ({ startedAt: m.at, endedAt: null, durationMs: null, exact: m.exact });
    const { step, stepStart, chapter: openChapter, section } = cursor.data;
    if (step !== 'COMPLETE') timeline.steps.push({ step, ...open(stepStart) });
    if (openChapter !== null) Object.assign(chapter(openChapter.number), open(openChapter));
    if (section !== null) chapter(section.chapter).sections.push({ section: section.number, ...open(section) });
  }
  timeline.chapters = [...chapters.values()].sort((a, b) => a.chapter - b.chapter);
  return timeline;
}

export interface AnalyticsWindow {
  /** Epoch ms, inclusive. */
  since: number;
  /** Epoch ms, exclusive. */
  until: number;
  /** Only this tenant's runs; undefined: every tenant (admin). */
  tenant?: string;
}

export interface Percentiles {
  count: number;
  p50: number | null;
  p90: number | null;
}

export interface Analytics {
  since: number;
  until: number;
  runs: { started: number; completed: number; failed: number; running: number; completionRate: number | null; failureRate: number | null };
  /** COMPLETE runs' durations, ms. */
  runDuration: Percentiles;
  steps: Array<Percentiles & { step: Step }>;
  chapter: Percentiles;
  section: Percentiles;
  /** Runs that ended in each bucket [start, start + bucketMs). */
  throughput: { bucketMs: number; buckets: Array<{ start: number; completed: number; failed: number }> };
}

const BUCKET_SIZES_MS = [60_000, 300_000, 900_000, 3_600_000, 21_600_000, 86_400_000, 604_800_000];
const MAX_BUCKETS = 60;

/** The bucket size for a window: the smallest that keeps it within MAX_BUCKETS buckets. */
export function bucketSize(since: number, until: number): number {
  const span = Math.max(1, until - since);
  return BUCKET_SIZES_MS.find((size) => span / size <= MAX_BUCKETS) ?? BUCKET_SIZES_MS.at(-1)!;
}

/**
 * Aggregates of the runs started in [since, until) (throughput: runs ended in it), three
 * statements, percentiles by percentile_cont over exact spans, each a range
 * scan of the window (run_spans through its partial covering indexes; run_timelines by start or end time).
 */
export async function analytics(db: Database, window: AnalyticsWindow): Promise<Analytics> {
  const since = new Date(window.since);
  const until = new Date(window.until);
  const tenantOf = (column: typeof runTimelines.tenant | typeof runSpans.tenant): SQL => (window.tenant === undefined ? sql`true` : sql`${column} = ${window.tenant}`);
  const p = (q: number, column: SQL) => sql<number | null>`percentile_cont(${sql.raw(String(q))}) within group (order by ${column})`;

  const [runs] = await db
    .select({
      started: sql<number>`count(*)::int`,
      completed: sql<number>`(count(*) filter (where ${runTimelines.status} = 'COMPLETE'))::int`,
      failed: sql<number>`(count(*) filter (where ${runTimelines.status} = 'ERROR'))::int`,
      p50: sql<number | null>`${p(0.5, sql`${runTimelines.durationMs}`)} filter (where ${runTimelines.status} = 'COMPLETE')`,
      p90: sql<number | null>`${p(0.9, sql`${runTimelines.durationMs}`)} filter (where ${runTimelines.status} = 'COMPLETE')`,
    })
    .from(runTimelines)
    .where(and(tenantOf(runTimelines.tenant), gte(runTimelines.startedAt, since), lt(runTimelines.startedAt, until)));

  const spans = await db
    .select({
      kind: runSpans.kind,
      step: runSpans.step,
      count: sql<number>`count(*)::int`,
      p50: p(0.5, sql`${runSpans.durationMs}`),
      p90: p(0.9, sql`${runSpans.durationMs}`),
    })
    .from(runSpans)
    .where(and(sql`${runSpans.exact}`, tenantOf(runSpans.tenant), gte(runSpans.runStartedAt, since), lt(runSpans.runStartedAt, until)))
    .groupBy(runSpans.kind, runSpans.step);

  const bucketMs = bucketSize(window.since, window.until);
  const bucket = sql`date_bin(${sql.raw(`'${bucketMs / 1000} seconds'`)}::interval, ${runTimelines.endedAt}, to_timestamp(${window.since / 1000}::double precision))`;
  const buckets = await db
    .select({
      start: sql<Date | string>`${bucket}`,
      completed: sql<number>`(count(*) filter (where ${runTimelines.status} = 'COMPLETE'))::int`,
      failed: sql<number>`(count(*) filter (where ${runTimelines.status} = 'ERROR'))::int`,
    })
    .from(runTimelines)
    .where(and(tenantOf(runTimelines.tenant), gte(runTimelines.endedAt, since), lt(runTimelines.endedAt, until)))
    // By position: the bucket expression carries parameters, and the same text twice is two different $n.
    .groupBy(sql`1`)
    .orderBy(sql`1`);

  const started = runs?.started ?? 0;
  const completed = runs?.completed ?? 0;
  const failed = runs?.failed ?? 0;
  const percentiles = (row: { count: number; p50: number | null; p90: number | null } | undefined): Percentiles => ({
    count: row?.count ?? 0,
    p50: num(row?.p50),
    p90: num(row?.p90),
  });
  return {
    since: window.since,
    until: window.until,
    runs: {
      started,
      completed,
      failed,
      running: started - completed - failed,
      completionRate: started === 0 ? null : completed / started,
      failureRate: started === 0 ? null : failed / started,
    },
    runDuration: { count: completed, p50: num(runs?.p50), p90: num(runs?.p90) },
    steps: spans.filter((s) => s.kind === 'step').map((s) => ({ step: s.step as Step, ...percentiles(s) })),
    chapter: percentiles(spans.find((s) => s.kind === 'chapter')),
    section: percentiles(spans.find((s) => s.kind === 'section')),
    throughput: {
      bucketMs,
      buckets: buckets.map((b) => ({ start: new Date(b.start).getTime(), completed: b.completed, failed: b.failed })),
    },
  };
}

/** postgres.js and PGlite return float8 as number or string depending on the driver. */
function num(value: number | string | null | undefined): number | null {
  return value === null || value === undefined ? null : Number(value);
}

/** A completed run as the ETA model learns from it: counts and exact step durations (ms). */
export interface RunHistory {
  totalChapters: number;
  totalSections: number;
  durationMs: number;
  steps: Partial<Record<Step, number>>;
}

/** The `limit` most recently ended COMPLETE runs (those that ended in `window`, if given), newest first, with their exact step durations: one statement. */
export async function recentCompletedRuns(db: Database, limit: number, window?: AnalyticsWindow): Promise<RunHistory[]> {
  const within =
    window === undefined
      ? sql`true`
      : and(gte(runTimelines.endedAt, new Date(window.since)), lt(runTimelines.endedAt, new Date(window.until)), window.tenant === undefined ? sql`true` : eq(runTimelines.tenant, window.tenant));
  const recent = db
    .select({ bookId: runTimelines.bookId, startedAt: runTimelines.startedAt, endedAt: runTimelines.endedAt, totalChapters: runTimelines.totalChapters, totalSections: runTimelines.totalSections, durationMs: runTimelines.durationMs })
    .from(runTimelines)
    .where(and(sql`${runTimelines.status} = 'COMPLETE' and ${runTimelines.endedAt} is not null`, within))
    .orderBy(desc(runTimelines.endedAt))
    .limit(limit)
    .as('recent');
  const rows = await db
    .select({ bookId: recent.bookId, startedAt: recent.startedAt, endedAt: recent.endedAt, totalChapters: recent.totalChapters, totalSections: recent.totalSections, durationMs: recent.durationMs, step: runSpans.step, stepMs: runSpans.durationMs })
    .from(recent)
    .leftJoin(runSpans, and(eq(runSpans.bookId, recent.bookId), eq(runSpans.runStartedAt, recent.startedAt), eq(runSpans.kind, 'step'), sql`${runSpans.exact}`))
    .orderBy(desc(recent.endedAt));
  const runs = new Map<string, RunHistory>();
  for (const row of rows) {
    const key = `${row.bookId}\u0000${new Date(row.startedAt).getTime()}`;
    let run = runs.get(key);
    if (run === undefined) runs.set(key, (run = { totalChapters: row.totalChapters, totalSections: row.totalSections, durationMs: row.durationMs ?? 0, steps: {} }));
    if (row.step !== null && row.stepMs !== null) run.steps[row.step as Step] = row.stepMs;
  }
  return [...runs.values()];
}
