import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';
import { startService } from '../../src/service.js';
import type { Service } from '../../src/service.js';
import { Gate, ScriptedGenerator, expectedChapters } from '../orchestrator/generators.js';
import type { Scripted } from '../orchestrator/generators.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { Watch } from '../support/events.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { silentLog, testConfig } from '../support/service.js';
import { until, withTimeout } from '../support/wait.js';

const STEP_MS = 10;

let database: TestDatabase;
let sql: postgres.Sql;
let proxy: FaultProxy;
const services: Service[] = [];
const watches: Watch[] = [];
const gates: Gate[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 1, onnotice: () => {} });
  process.on('unhandledRejection', onUnhandled);
});

afterEach(async () => {
  unhandled.length = 0;
  proxy?.heal();
  for (const gate of gates.splice(0)) gate.open();
  for (const watch of watches.splice(0)) watch.close();
  for (const service of services.splice(0)) await service.close();
  await proxy?.close();
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await sql?.end();
  await database?.drop();
});

/** A service whose every Postgres connection goes through a fresh proxy the test can cut. */
async function start(env: Record<string, string>, script: Scripted = {}): Promise<Service> {
  for (const gate of Object.values(script.gates ?? {})) gates.push(gate);
  proxy = await FaultProxy.start(database.url);
  const config = testConfig({ DATABASE_URL: proxy.url(database.url), ...env });
  const service = await startService(config, silentLog, { generator: new ScriptedGenerator(STEP_MS, script) });
  services.push(service);
  expect(proxy.accepted).toBeGreaterThan(0);
  return service;
}

async function rowOf(bookId: string): Promise<{ status: string; version: number } | undefined> {
  const [row] = await sql<Array<{ status: string; version: number }>>`select status, version from books where id = ${bookId}`;
  return row;
}

async function chaptersInPostgres(bookId: string): Promise<Array<{ number: number; title: string; content: string }>> {
  return sql<Array<{ number: number; title: string; content: string }>>`select number, title, content from chapters where book_id = ${bookId} order by number`;
}

describe('Postgres cut during a demo generation', () => {
  it('the book still completes, every chapter reaches Postgres after the cut heals, nothing goes backwards', async () => {
    const chapter2 = new Gate('chapter 2');
    const proofreading = new Gate('proofreading');
    const service = await start({ SNAPSHOT_INTERVAL_MS: '200' }, { gates: { 'chapter 2': chapter2, PROOFREADING: proofreading } });
    const res = await fetch(`${service.url}/api/books`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Written through a partition', chapters: 4, sectionsPerChapter: 2 }),
    });
    expect(res.status).toBe(201);
    const spec = ((await res.json()) as { data: { bookId: string; title: string; chapters: number; sectionsPerChapter: number } }).data;
    const bookId = spec.bookId;
    const stream = new Watch(`${service.url}/api/ai/progress/${bookId}/stream`);
    watches.push(stream);

    await chapter2.arrival();
    proxy.cut();
    const failuresBefore = service.snapshotter.stats.failures;
    chapter2.open();

    // Chapters 2-4 are generated with Postgres unreachable; their saves and the snapshots fail and retry.
    await proofreading.arrival();
    await until(() => service.snapshotter.stats.failures > failuresBefore && proxy.refused > 0, 5_000, 'a snapshot and a save to fail on the cut');
    proofreading.open();
    await stream.next((s) => s.message === 'Saving chapters...', 5_000, 'the pipeline waiting for its chapter saves');
    expect(stream.states.some((s) => s.status === 'COMPLETE')).toBe(false);
    expect((await chaptersInPostgres(bookId)).length).toBeLessThanOrEqual(1);

    proxy.heal();
    const done = await stream.next((s) => s.status === 'COMPLETE', 20_000, 'COMPLETE after the cut heals');
    expect(done).toMatchObject({ overallProgress: 100, currentChapter: 4, totalChapters: 4 });

    // Every chapter, exactly as generated, is in Postgres: none lost, none regenerated.
    const expected = await expectedChapters(spec);
    expect(await chaptersInPostgres(bookId)).toEqual(expected);
    await until(async () => (await rowOf(bookId))?.status === 'COMPLETE', 10_000, 'the COMPLETE row in Postgres');
    expect((await rowOf(bookId))?.version).toBe(done.version);

    const states = stream.states;
    expect(states.some((s) => s.status === 'ERROR')).toBe(false);
    for (let i = 1; i < states.length; i++) {
      expect(states[i]!.version).toBeGreaterThan(states[i - 1]!.version);
      expect(states[i]!.overallProgress, `progress at version ${states[i]!.version}`).toBeGreaterThanOrEqual(states[i - 1]!.overallProgress);
    }
    expect(unhandled).toEqual([]);
  });

  it('a terminal state reached while Postgres is cut is written once it heals', async () => {
    const service = await start({ SNAPSHOT_INTERVAL_MS: '3600000' });
    const bookId = `terminal-${Math.random().toString(36).slice(2, 10)}`;
    await service.tracker.updateProgress(bookId, { status: 'GENERATING', generationStep: 'CHAPTERS', totalChapters: 3, currentChapter: 3 });

    proxy.cut();
    // Resolves without the database: the state is in Redis, and queued for Postgres.
    const done = await withTimeout(service.tracker.markComplete(bookId, 3), 5_000, 'markComplete with Postgres cut');
    expect(service.snapshotter.stats.waitingForDatabase).toBe(1);
    const polled = await fetch(`${service.url}/api/ai/progress/${bookId}`);
    expect(((await polled.json()) as { data: BookProgress }).data).toEqual(done);
    expect(await rowOf(bookId)).toMatchObject({ status: 'GENERATING' });

    proxy.heal();
    await until(async () => (await rowOf(bookId))?.status === 'COMPLETE', 10_000, 'the queued COMPLETE to reach Postgres');
    expect(await rowOf(bookId)).toEqual({ status: 'COMPLETE', version: done.version });
    expect(service.snapshotter.stats.waitingForDatabase).toBe(0);
    expect(unhandled).toEqual([]);
  });
});
