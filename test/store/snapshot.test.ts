import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { startTestService } from '../support/service.js';

let database: TestDatabase;
let sql: postgres.Sql;
let service: Service;

interface Row {
  id: string;
  status: string;
  generation_step: string;
  version: number;
  progress: BookProgress | null;
}

beforeAll(async () => {
  database = await createTestDatabase();
  // An interval no test reaches: every snapshot here is one the test takes itself.
  service = await startTestService({ DATABASE_URL: database.url, SNAPSHOT_INTERVAL_MS: '3600000' });
  sql = postgres(database.url, { max: 2, onnotice: () => {} });
});

afterAll(async () => {
  await service?.close();
  await sql?.end();
  await database?.drop();
});

let sequence = 0;
const uniqueBook = (label: string) => `${label}-${++sequence}-${Math.random().toString(36).slice(2, 8)}`;

async function rows(ids: readonly string[]): Promise<Map<string, Row>> {
  const found = await sql<Row[]>`select id, status, generation_step, version, progress from books where id in ${sql(ids)}`;
  return new Map(found.map((row) => [row.id, row]));
}

describe('batched snapshots', () => {
  it('writes many updates of several books within one interval as one upsert of their latest versions', async () => {
    // Stop the schedule (it takes its own last, empty snapshot) so the hourly round cannot land mid-test.
    await service.snapshotter.stop();
    await service.snapshotter.snapshot();

    const books = Array.from({ length: 6 }, () => uniqueBook('batch'));
    const latest = new Map<string, BookProgress>();
    await Promise.all(
      books.map(async (id, b) => {
        for (let i = 1; i <= 8; i++) {
          const state = await service.tracker.updateProgress(id, {
            status: 'GENERATING',
            generationStep: 'CHAPTERS',
            totalChapters: 10,
            currentChapter: Math.min(10, i + b),
            message: `book ${b} update ${i}`,
          });
          latest.set(id, state);
        }
      }),
    );
    // Only each book's first state is in Postgres yet (written at once, so the database knows the book).
    expect([...(await rows(books)).values()].map((row) => row.version)).toEqual(books.map(() => 1));

    const before = { ...service.store.stats };
    const written = await service.snapshotter.snapshot();
    expect(written).toBe(books.length);
    expect(service.store.stats.upsertStatements - before.upsertStatements).toBe(1);
    expect(service.store.stats.rowsWritten - before.rowsWritten).toBe(books.length);

    const saved = await rows(books);
    expect(saved.size).toBe(books.length);
    for (const id of books) {
      const row = saved.get(id);
      const state = latest.get(id)!;
      expect(state.version).toBe(8);
      expect(row).toMatchObject({ status: 'GENERATING', generation_step: 'CHAPTERS', version: state.version });
      expect(row?.progress).toEqual(state);
    }

    // Nothing changed since: the next snapshot has nothing to write and sends no statement.
    const idle = service.store.stats.upsertStatements;
    expect(await service.snapshotter.snapshot()).toBe(0);
    expect(service.store.stats.upsertStatements).toBe(idle);

    // One more update of one book: only that book is written, again in one statement.
    const [first] = books as [string];
    const newer = await service.tracker.updateProgress(first, { message: 'one more' });
    expect(await service.snapshotter.snapshot()).toBe(1);
    expect(service.store.stats.upsertStatements).toBe(idle + 1);
    expect((await rows([first])).get(first)?.version).toBe(newer.version);
  });
});

describe('terminal states', () => {
  it('are written at once, without waiting for the interval', async () => {
    const done = uniqueBook('complete');
    await service.tracker.updateProgress(done, { status: 'GENERATING', generationStep: 'CHAPTERS', totalChapters: 3, currentChapter: 2 });
    const failed = uniqueBook('error');
    await service.tracker.updateProgress(failed, { status: 'GENERATING', generationStep: 'CHAPTERS', totalChapters: 3, currentChapter: 1 });
    const snapshots = service.snapshotter.stats.snapshots;

    const complete = await service.tracker.markComplete(done, 3);
    const error = await service.tracker.markError(failed, 'the model refused');

    const saved = await rows([done, failed]);
    expect(saved.get(done)).toMatchObject({ status: 'COMPLETE', generation_step: 'COMPLETE', version: complete.version });
    expect(saved.get(done)?.progress).toEqual(complete);
    expect(saved.get(failed)).toMatchObject({ status: 'ERROR', version: error.version });
    expect(saved.get(failed)?.progress?.error).toBe('the model refused');
    // Written by the terminal path itself, not by a snapshot round.
    expect(service.snapshotter.stats.snapshots).toBe(snapshots);
  });
});
