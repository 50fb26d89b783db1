import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { startTestService } from '../support/service.js';
import { until, waitOut } from '../support/wait.js';

/** POST /api/books answered 503 at its deadline leaves no book behind: its transaction does not commit later. */

const TIMEOUT_MS = 1_500;

let database: TestDatabase;
let sql: postgres.Sql;
let service: Service;

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 3, onnotice: () => {} });
  service = await startTestService({ DATABASE_URL: database.url, BACKEND_TIMEOUT_MS: String(TIMEOUT_MS) });
});
afterAll(async () => {
  await service?.close();
  await sql?.end();
  await database?.drop();
});

/** Statements of the service waiting for a lock on `table`. */
async function waitingOn(table: string): Promise<boolean> {
  const rows = await sql`select 1 from pg_stat_activity where datname = ${database.name} and wait_event_type = 'Lock' and query ilike ${`insert into "${table}"%`}`;
  return rows.length > 0;
}

describe('creating a book', () => {
  it('past BACKEND_TIMEOUT_MS: 503, and the transaction rolls back even when its statements then go through', async () => {
    // Two locks, each shorter than statement_timeout, together longer than the deadline.
    const booksLock = sql.reserve();
    const runsLock = sql.reserve();
    const [holdBooks, holdRuns] = await Promise.all([booksLock, runsLock]);
    try {
      await holdBooks`begin`;
      await holdBooks`lock table books in exclusive mode`;
      await holdRuns`begin`;
      await holdRuns`lock table runs in exclusive mode`;

      const answer = fetch(`${service.url}/api/books`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ title: 'Answered 503', chapters: 1, sectionsPerChapter: 1 }),
      });
      await until(() => waitingOn('books'), 5_000, 'the insert into books to wait for its lock');
      // The books insert has waited a while; the runs insert then waits past the request's deadline.
      await waitOut(TIMEOUT_MS / 3);
      await holdBooks`rollback`;
      await until(() => waitingOn('runs'), 5_000, 'the insert into runs to wait for its lock');
      const res = await answer;
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('database_unavailable');
      // Released before statement_timeout ends the wait: the insert goes through.
      expect(await waitingOn('runs')).toBe(true);
      await holdRuns`rollback`;
    } finally {
      holdBooks.release();
      holdRuns.release();
    }
    await until(
      async () => (await sql`select 1 from pg_stat_activity where datname = ${database.name} and state like 'idle in transaction%' or (datname = ${database.name} and query ilike 'insert into%' and state = 'active')`).length === 0,
      5_000,
      'the transaction to end',
    );
    expect(await sql`select id from books where title = 'Answered 503'`).toEqual([]);
    expect(await sql`select book_id from runs where title = 'Answered 503'`).toEqual([]);
  });
});
