import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { startTestService } from '../support/service.js';
import { until } from '../support/wait.js';

const INTERVAL_MS = 250;
const PUBLISH_FOR_MS = 4 * INTERVAL_MS;

let database: TestDatabase;
let sql: postgres.Sql;
const services: Service[] = [];

interface Taken {
  round: number | null;
  written: number | null;
}

/** Records every snapshot the process's own schedule takes, with its round and what it wrote (null: not claimed). */
function recordSnapshots(service: Service): Taken[] {
  const taken: Taken[] = [];
  const snapshotter = service.snapshotter;
  const snapshot = snapshotter.snapshot.bind(snapshotter);
  snapshotter.snapshot = async (round = null) => {
    const written = await snapshot(round);
    taken.push({ round, written });
    return written;
  };
  return taken;
}

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 1, onnotice: () => {} });
});

afterAll(async () => {
  for (const service of services.splice(0)) await service.close();
  await sql?.end();
  await database?.drop();
});

describe('two server processes on one Redis and one database', () => {
  it('snapshot each round once between them, and together write every latest version', async () => {
    const env = { DATABASE_URL: database.url, REDIS_KEY_PREFIX: uniquePrefix(), SNAPSHOT_INTERVAL_MS: String(INTERVAL_MS) };
    const [a, b] = [await startTestService(env), await startTestService(env)] as const;
    services.push(a, b);
    const taken = [recordSnapshots(a), recordSnapshots(b)] as const;
    const upserts = () => a.store.stats.upsertStatements + b.store.stats.upsertStatements;

    const books = ['cluster-1', 'cluster-2', 'cluster-3', 'cluster-4'];
    const latest = new Map<string, BookProgress>();
    // The first state of each book is written at once, outside the rounds; count from after it.
    for (const book of books) latest.set(book, await a.tracker.updateProgress(book, { status: 'GENERATING', message: 'first' }));
    const upsertsBefore = upserts();
    const firstRound = Math.floor(Date.now() / INTERVAL_MS);
    const stopAt = Date.now() + PUBLISH_FOR_MS;
    for (let i = 0; Date.now() < stopAt; i++) {
      const book = books[i % books.length] as string;
      const publisher = i % 2 === 0 ? a : b;
      latest.set(book, await publisher.tracker.updateProgress(book, { status: 'GENERATING', message: `update ${i}` }));
    }
    const lastPublishRound = Math.floor(Date.now() / INTERVAL_MS);

    // Wait for a round after the last update, so that one must carry the latest versions.
    const claimedAfter = (round: number) => taken.some((list) => list.some((t) => t.round !== null && t.round > round && t.written !== null));
    await until(() => claimedAfter(lastPublishRound), 10 * INTERVAL_MS, 'a snapshot round after the last update');
    const lastRound = Math.floor(Date.now() / INTERVAL_MS);

    const claimedRounds = taken.flatMap((list) => list.filter((t) => t.written !== null).map((t) => t.round));
    // Every claimed snapshot came from the schedule, and no round was claimed twice, by either process.
    expect(claimedRounds).not.toContain(null);
    expect(new Set(claimedRounds).size).toBe(claimedRounds.length);
    // The other process did try (and was refused) rounds, so the single claim was really contended.
    expect(taken[0].length + taken[1].length).toBeGreaterThan(claimedRounds.length);

    const roundsElapsed = lastRound - firstRound + 1;
    const statements = upserts() - upsertsBefore;
    expect(statements).toBeLessThanOrEqual(roundsElapsed + 1);
    // Books changed in every round of the publishing window, so each of those rounds wrote.
    expect(statements).toBeGreaterThanOrEqual(3);

    const rows = await sql<Array<{ id: string; version: number }>>`select id, version from books where id in ${sql(books)}`;
    expect(new Map(rows.map((row) => [row.id, row.version]))).toEqual(new Map(books.map((id) => [id, latest.get(id)!.version])));
  });
});
