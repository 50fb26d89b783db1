import { and, asc, desc, eq, inArray, sql } from 'drizzle-orm';
import type { BookProgress } from '../progress/schema.js';
import type { Database } from './database.js';
import type { DatabaseDeadline } from './deadline.js';
import { books, chapters } from './schema.js';

export interface BookRecord {
  id: string;
  title: string;
  owner: string | null;
  tenant: string | null;
  status: string;
  generationStep: string;
  progress: BookProgress | null;
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface ChapterRecord {
  number: number;
  title: string;
  content: string;
  updatedAt: Date;
}

export const DEFAULT_LIST_LIMIT = 100;

/** Which books a listing may show: one tenant's, and only `books` of them when given. */
export interface TenantFilter {
  tenant: string;
  books: ReadonlySet<string> | null;
}

/** Books and their generated chapters in Postgres. */
export class BookStore {
  readonly #db: Database;
  readonly #deadline: DatabaseDeadline;

  /** `deadline` bounds each statement (DatabaseHandle.deadline). */
  constructor(db: Database, deadline: DatabaseDeadline) {
    this.#db = db;
    this.#deadline = deadline;
  }

  async createBook(book: { id: string; title: string; owner?: string | null; tenant?: string | null }): Promise<BookRecord> {
    const [row] = await this.#deadline.run(
      'creating a book',
      this.#db.insert(books).values({ id: book.id, title: book.title, owner: book.owner ?? null, tenant: book.tenant ?? null }).returning(),
    );
    return row as BookRecord;
  }

  /**
   * Names a book a publisher writes (POST /api/ai/progress with `title`): creates its row when the
   * snapshotter has not yet, and renames it only while its tenant is `tenant` (null: none).
   * Whether the caller may write the book was decided before (the tracker's tenant rule).
   */
  async setTitle(bookId: string, title: string, tenant: string | null): Promise<boolean> {
    const rows = await this.#deadline.run(
      'naming a book',
      this.#db
        .insert(books)
        .values({ id: bookId, title, tenant })
        .onConflictDoUpdate({ target: books.id, set: { title: sql`excluded.title` }, setWhere: sql`${books.tenant} is not distinct from excluded.tenant` })
        .returning({ id: books.id }),
    );
    return rows.length > 0;
  }

  /** Newest first; only the books `filter` allows (null: every book). */
  async listBooks(limit = DEFAULT_LIST_LIMIT, filter: TenantFilter | null = null): Promise<BookRecord[]> {
    if (filter?.books?.size === 0) return [];
    const where =
      filter === null
        ? undefined
        : and(eq(books.tenant, filter.tenant), filter.books === null ? undefined : inArray(books.id, [...filter.books]));
    return this.#deadline.run('listing books', this.#db.select().from(books).where(where).orderBy(desc(books.createdAt), asc(books.id)).limit(limit));
  }

  /** The book's tenant (null: it has none); undefined when there is no such book. */
  async tenantOf(bookId: string): Promise<string | null | undefined> {
    const [row] = await this.#deadline.run('reading a book', this.#db.select({ tenant: books.tenant }).from(books).where(eq(books.id, bookId)));
    return row === undefined ? undefined : row.tenant;
  }

  async getBook(bookId: string): Promise<(BookRecord & { chapters: ChapterRecord[] }) | null> {
    const [book] = await this.#deadline.run('reading a book', this.#db.select().from(books).where(eq(books.id, bookId)));
    if (!book) return null;
    const rows = await this.#deadline.run(
      'reading chapters',
      this.#db
        .select({ number: chapters.number, title: chapters.title, content: chapters.content, updatedAt: chapters.updatedAt })
        .from(chapters)
        .where(eq(chapters.bookId, bookId))
        .orderBy(asc(chapters.number)),
    );
    return { ...book, chapters: rows };
  }
}
