import { sql } from 'drizzle-orm';
import { boolean, index, integer, jsonb, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';
import type { BookProgress } from '../progress/schema.js';

export const books = pgTable(
  'books',
  {
    id: text('id').primaryKey(),
    title: text('title').notNull().default(''),
    owner: text('owner'),
    /** The tenant the book belongs to, fixed when it first appears (null: published without authentication). */
    tenant: text('tenant'),
    status: text('status').notNull().default('PLANNING'),
    generationStep: text('generation_step').notNull().default('PLANNING'),
    progress: jsonb('progress').$type<BookProgress>(),
    version: integer('version').notNull().default(0),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().default(sql`now()`),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().default(sql`now()`),
  },
  (table) => [index('books_created_at_idx').on(table.createdAt), index('books_tenant_created_at_idx').on(table.tenant, table.createdAt)],
);

export const chapters = pgTable(
  'chapters',
  {
    bookId: text('book_id')
      .notNull()
      .references(() => books.id, { onDelete: 'cascade' }),
    number: integer('number').notNull(),
    title: text('title').notNull(),
    content: text('content').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().default(sql`now()`),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().default(sql`now()`),
  },
  (table) => [primaryKey({ columns: [table.bookId, table.number] })],
);

/**
 * One row per book this service's orchestrator generates: the queue, the lease of the process
 * running it, and the fence (`epoch`, +1 at every claim) that every write of a run must match.
 */
export const runs = pgTable(
  'runs',
  {
    bookId: text('book_id')
      .primaryKey()
      .references(() => books.id, { onDelete: 'cascade' }),
    title: text('title').notNull(),
    chapters: integer('chapters').notNull(),
    sectionsPerChapter: integer('sections_per_chapter').notNull(),
    /** queued | running | done */
    state: text('state').notNull().default('queued'),
    epoch: integer('epoch').notNull().default(0),
    owner: text('owner'),
    leaseUntil: timestamp('lease_until', { withTimezone: true }),
    /** Claims since the run was last queued by a start or a retry: above 1 means a resume. */
    claims: integer('claims').notNull().default(0),
    cancelRequested: boolean('cancel_requested').notNull().default(false),
    /** The book's version when the run was queued: a terminal state above it ends this run. */
    baseVersion: integer('base_version').notNull().default(0),
    outline: jsonb('outline').$type<Array<{ number: number; title: string }>>(),
    queuedAt: timestamp('queued_at', { withTimezone: true }).notNull().default(sql`now()`),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().default(sql`now()`),
  },
  (table) => [index('runs_state_queued_at_idx').on(table.state, table.queuedAt)],
);

const at = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/**
 * One row per generation run of a book (src/analytics/timeline.ts derives them from committed
 * states): its outcome and the cursor the timeline fold continues from. No foreign key to books:
 * a run is recorded from the feed, possibly before the snapshotter writes its book.
 */
export const runTimelines = pgTable(
  'run_timelines',
  {
    bookId: text('book_id').notNull(),
    startedAt: at('started_at').notNull(),
    tenant: text('tenant'),
    /** The book status at the run's last observed state: COMPLETE and ERROR end it. */
    status: text('status').notNull(),
    endedAt: at('ended_at'),
    durationMs: integer('duration_ms'),
    error: text('error'),
    totalChapters: integer('total_chapters').notNull(),
    totalSections: integer('total_sections').notNull(),
    /** The last state folded in: an older one never overwrites the row. */
    version: integer('version').notNull(),
    /** The fold's state (analytics CursorSchema), validated when read back. */
    cursor: jsonb('cursor').notNull(),
  },
  (table) => [
    primaryKey({ columns: [table.bookId, table.startedAt] }),
    index('run_timelines_started_at_idx').on(table.startedAt),
    index('run_timelines_tenant_started_at_idx').on(table.tenant, table.startedAt),
    index('run_timelines_ended_at_idx').on(table.endedAt),
    index('run_timelines_tenant_ended_at_idx').on(table.tenant, table.endedAt),
  ],
);

/**
 * Finished steps, chapters and sections of the runs in run_timelines, written once each.
 * The partial indexes hold all the aggregates read (exact spans: run start, kind, step, duration),
 * so percentiles over a window are an index-only range scan of that window.
 */
export const runSpans = pgTable(
  'run_spans',
  {
    bookId: text('book_id').notNull(),
    runStartedAt: at('run_started_at').notNull(),
    tenant: text('tenant'),
    /** step | chapter | section */
    kind: text('kind').notNull(),
    step: text('step').notNull(),
    chapter: integer('chapter').notNull(),
    section: integer('section').notNull(),
    startedAt: at('started_at').notNull(),
    endedAt: at('ended_at').notNull(),
    durationMs: integer('duration_ms').notNull(),
    /** Both ends seen at their own commit (no skipped version between). */
    exact: boolean('exact').notNull(),
  },
  (table) => [
    primaryKey({ columns: [table.bookId, table.runStartedAt, table.step, table.chapter, table.section] }),
    index('run_spans_exact_run_started_idx')
      .on(table.runStartedAt, table.kind, table.step, table.durationMs)
      .where(sql`${table.exact}`),
    index('run_spans_exact_tenant_run_started_idx')
      .on(table.tenant, table.runStartedAt, table.kind, table.step, table.durationMs)
      .where(sql`${table.exact}`),
  ],
);
