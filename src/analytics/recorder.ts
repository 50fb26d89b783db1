import { inArray, sql } from 'drizzle-orm';
import { DEFAULT_BACKEND_TIMEOUT_MS } from '../config.js';
import type { BookProgress, Status } from '../progress/schema.js';
import type { Database } from '../store/database.js';
import { DatabaseDeadline } from '../store/deadline.js';
import { runSpans, runTimelines } from '../store/schema.js';
import { CursorSchema, foldBatch, runKey } from './timeline.js';
import type { FoldedBatch, RunRecord, Span } from './timeline.js';

/**
 * A batch recorded: what it folded, and what this call wrote first (RETURNING): the spans it
 * inserted and the runs that ended in it whose row it updated. Several processes may record the
 * same commits; only the first to write a span or an end counts it (the metrics use these).
 */
export interface RecordedBatch extends FoldedBatch {
  written: { spans: Span[]; ended: RunRecord[] };
}

/**
 * Rows per statement at most: Postgres takes 65,535 parameters, a span row has 11. A batch
 * drained every few seconds stays far below it; a larger one is written in a few statements.
 */
const MAX_ROWS_PER_STATEMENT = 5_000;
/** A duration in an int4 column: past ~24 days it is clamped (no generation runs that long). */
const MAX_DURATION_MS = 2_147_483_647;

/**
 * Writes the timelines of a batch of committed states: reads the last recorded run of each book
 * in the batch (one statement), folds the batch (timeline.ts), then writes the finished spans
 * (one INSERT … ON CONFLICT DO NOTHING) and the runs with their cursors (one upsert, guarded by
 * version). Spans go first: a batch that fails midway is retried from the old cursors, folds to
 * the same spans, and their unique keys make the retry write nothing twice. Never called per
 * update: its caller drains the feed (or a snapshot round) in batches.
 */
export class TimelineRecorder {
  /** Statements sent so far (reads and writes). */
  statements = 0;
  readonly #db: Database;
  readonly #deadline: DatabaseDeadline;

  constructor(db: Database, deadline = new DatabaseDeadline(DEFAULT_BACKEND_TIMEOUT_MS)) {
    this.#db = db;
    this.#deadline = deadline;
  }

  /** Records the batch; resolves to what it folded. Throws when the database failed (retry the same batch). */
  async record(states: readonly BookProgress[]): Promise<RecordedBatch> {
    const written: RecordedBatch['written'] = { spans: [], ended: [] };
    if (states.length === 0) return { runs: [], spans: [], ended: new Set(), written };
    const last = await this.lastRuns([...new Set(states.map((s) => s.bookId))]);
    const folded = foldBatch(last, states);
    const spanKey = (s: { bookId: string; runStartedAt: number; step: string; chapter: number; section: number }) => `${s.bookId}\u0000${s.runStartedAt}\u0000${s.step}\u0000${s.chapter}\u0000${s.section}`;
    for (let i = 0; i < folded.spans.length; i += MAX_ROWS_PER_STATEMENT) {
      const slice = folded.spans.slice(i, i + MAX_ROWS_PER_STATEMENT);
      const rows = slice.map((s) => ({
        ...s,
        runStartedAt: new Date(s.runStartedAt),
        startedAt: new Date(s.startedAt),
        endedAt: new Date(s.endedAt),
        durationMs: clampDuration(s.endedAt - s.startedAt),
      }));
      this.statements++;
      const inserted = await this.#deadline.run(
        'a run spans insert',
        this.#db.insert(runSpans).values(rows).onConflictDoNothing().returning({ bookId: runSpans.bookId, runStartedAt: runSpans.runStartedAt, step: runSpans.step, chapter: runSpans.chapter, section: runSpans.section }),
      );
      const keys = new Set(inserted.map((r) => spanKey({ ...r, runStartedAt: new Date(r.runStartedAt).getTime() })));
      written.spans.push(...slice.filter((s) => keys.has(spanKey(s))));
    }
    for (let i = 0; i < folded.runs.length; i += MAX_ROWS_PER_STATEMENT) {
      const slice = folded.runs.slice(i, i + MAX_ROWS_PER_STATEMENT);
      const rows = slice.map(toRow);
      const upsert = this.#db
        .insert(runTimelines)
        .values(rows)
        .onConflictDoUpdate({
          target: [runTimelines.bookId, runTimelines.startedAt],
          set: {
            status: sql`excluded.status`,
            endedAt: sql`excluded.ended_at`,
            durationMs: sql`excluded.duration_ms`,
            error: sql`excluded.error`,
            totalChapters: sql`excluded.total_chapters`,
            totalSections: sql`excluded.total_sections`,
            version: sql`excluded.version`,
            cursor: sql`excluded.cursor`,
          },
          setWhere: sql`${runTimelines.version} < excluded.version`,
        })
        .returning({ bookId: runTimelines.bookId, startedAt: runTimelines.startedAt });
      this.statements++;
      const updated = new Set((await this.#deadline.run('a run timelines upsert', upsert)).map((r) => runKey({ bookId: r.bookId, startedAt: new Date(r.startedAt).getTime() })));
      written.ended.push(...slice.filter((run) => folded.ended.has(runKey(run)) && updated.has(runKey(run))));
    }
    return { ...folded, written };
  }

  /** The latest recorded run of each book (a cursor that no longer parses counts as none). */
  async lastRuns(bookIds: readonly string[]): Promise<Map<string, RunRecord>> {
    const found = new Map<string, RunRecord>();
    if (bookIds.length === 0) return found;
    this.statements++;
    const rows = await this.#deadline.run(
      'a run timelines read',
      this.#db
        .selectDistinctOn([runTimelines.bookId])
        .from(runTimelines)
        .where(inArray(runTimelines.bookId, [...bookIds]))
        .orderBy(runTimelines.bookId, sql`${runTimelines.startedAt} desc`),
    );
    for (const row of rows) {
      const cursor = CursorSchema.safeParse(row.cursor);
      if (!cursor.success) continue;
      found.set(row.bookId, {
        bookId: row.bookId,
        tenant: row.tenant,
        startedAt: row.startedAt.getTime(),
        status: row.status as Status,
        endedAt: row.endedAt?.getTime() ?? null,
        error: row.error,
        totalChapters: row.totalChapters,
        totalSections: row.totalSections,
        version: row.version,
        cursor: cursor.data,
      });
    }
    return found;
  }
}

function toRow(run: RunRecord): typeof runTimelines.$inferInsert {
  return {
    bookId: run.bookId,
    startedAt: new Date(run.startedAt),
    tenant: run.tenant,
    status: run.status,
    endedAt: run.endedAt === null ? null : new Date(run.endedAt),
    durationMs: run.endedAt === null ? null : clampDuration(run.endedAt - run.startedAt),
    error: run.error,
    totalChapters: run.totalChapters,
    totalSections: run.totalSections,
    version: run.version,
    cursor: run.cursor,
  };
}

function clampDuration(ms: number): number {
  return Math.max(0, Math.min(MAX_DURATION_MS, Math.round(ms)));
}
