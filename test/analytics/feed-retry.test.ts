import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookTimeline } from '../../src/analytics/queries.js';
import { TimelineRecorder } from '../../src/analytics/recorder.js';
import { TimelineFeed } from '../../src/analytics/timeline-feed.js';
import { migrateDatabase } from '../../src/store/database.js';
import type { Database } from '../../src/store/database.js';
import { DatabaseDeadline } from '../../src/store/deadline.js';
import * as schema from '../../src/store/schema.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { silentLog } from '../support/service.js';
import { simulateRun } from './runs.js';

let database: TestDatabase;
let proxy: FaultProxy;
let client: postgres.Sql;
let db: Database;

beforeAll(async () => {
  database = await createTestDatabase();
  await migrateDatabase(database.url);
  proxy = await FaultProxy.start(database.url);
  client = postgres(proxy.url(database.url), { max: 1, onnotice: () => {}, fetch_types: false, connect_timeout: 2 });
  db = drizzle(client, { schema }) as unknown as Database;
});
afterAll(async () => {
  await client?.end({ timeout: 1 });
  await proxy?.close();
  await database?.drop();
});

describe('a timeline batch the database refused', () => {
  it('is kept, with what arrived meanwhile, and written once when the database answers', async () => {
    const feed = new TimelineFeed({ recorder: new TimelineRecorder(db, new DatabaseDeadline(2_000)), log: silentLog });
    const states = simulateRun('retried', { chapters: 2, sections: 2, stepMs: 1_000, sectionMs: 500, start: Date.UTC(2026, 0, 1) });
    const half = Math.floor(states.length / 2);
    feed.offer(states.slice(0, half));
    await feed.flush();

    proxy.cut();
    feed.offer(states.slice(half, -2));
    await expect(feed.flush()).rejects.toThrow();
    expect(feed.stats.pending).toBe(states.length - 2 - half);
    feed.offer(states.slice(-2));
    proxy.heal();
    await feed.flush();
    expect(feed.stats.pending).toBe(0);

    const timeline = (await bookTimeline(db, 'retried'))!;
    expect(timeline.status).toBe('COMPLETE');
    expect(timeline.steps.map((s) => [s.step, s.durationMs, s.exact])).toEqual([
      ['PLANNING', 1_000, true],
      ['RESEARCH', 1_000, true],
      ['OUTLINE', 1_000, true],
      ['STRUCTURE', 1_000, true],
      ['CHAPTERS', 2_000, true],
      ['PROOFREADING', 1_000, true],
    ]);
    expect(timeline.chapters.map((c) => c.sections.map((s) => s.durationMs))).toEqual([
      [500, 500],
      [500, 500],
    ]);
    await feed.stop();
  });
});
