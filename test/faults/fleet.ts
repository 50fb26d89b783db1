import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { expectedChapters } from '../orchestrator/generators.js';
import { REDIS_URL, createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { chapterRows } from '../support/books.js';
import { Watch } from '../support/events.js';
import { ServerProcess } from '../support/server-process.js';

/**
 * Server processes sharing the real Redis and one fresh Postgres database for the file: start as
 * many as a test needs; after each test every watcher is closed and every server still running is
 * woken (SIGCONT) and killed.
 */
export interface Fleet {
  /** The file's database, open once the first test runs. */
  readonly sql: postgres.Sql;
  /** A server on the shared Redis and the file's database, snapshotting every 500 ms; `env` adds to it. */
  start(env: Record<string, string>): Promise<ServerProcess>;
  /** A server with only `env` (the embedded default when it names no backends), stopped like the others. */
  startAlone(env: Record<string, string>): Promise<ServerProcess>;
  /** A watcher of `bookId` on whichever server `target()` names at each reconnect. */
  follow(target: () => string, bookId: string): Watch;
  /** The book's chapters are the generator's, each saved once and never rewritten. */
  expectEachChapterOnce(book: { bookId: string; title: string; chapters: number; sectionsPerChapter: number }): Promise<void>;
}

/** Registers the file's hooks and returns its fleet. */
export function fleetOfServers(): Fleet {
  let database: TestDatabase;
  let sql: postgres.Sql;
  const servers: ServerProcess[] = [];
  const watches: Watch[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    sql = postgres(database.url, { max: 1, onnotice: () => {} });
  });
  afterEach(async () => {
    for (const watch of watches.splice(0)) watch.close();
    for (const server of servers.splice(0)) {
      server.signal('SIGCONT');
      if (server.running) await server.stop('SIGKILL');
    }
  });
  afterAll(async () => {
    await sql?.end();
    await database?.drop();
  });

  const startAlone = async (env: Record<string, string>) => {
    const server = await ServerProcess.start(env);
    servers.push(server);
    return server;
  };
  return {
    get sql() {
      return sql;
    },
    start: (env) => startAlone({ REDIS_URL, DATABASE_URL: database.url, SNAPSHOT_INTERVAL_MS: '500', ...env }),
    startAlone,
    follow(target, bookId) {
      const watch = Watch.following(target, bookId);
      watches.push(watch);
      return watch;
    },
    async expectEachChapterOnce(book) {
      const rows = await chapterRows(sql, book.bookId);
      expect(rows.map(({ number, title, content }) => ({ number, title, content }))).toEqual(await expectedChapters(book));
      for (const row of rows) expect(row.updated_at, `chapter ${row.number} of ${book.bookId} rewritten`).toEqual(row.created_at);
    },
  };
}
