import { sql } from 'drizzle-orm';
import { index, integer, jsonb, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';
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
