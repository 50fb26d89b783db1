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
