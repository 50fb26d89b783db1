import { pino } from 'pino';
import { EventSource } from 'eventsource';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { startService } from '../../src/service.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { Watch } from '../support/events.js';
import { RedisCluster } from '../support/redis-cluster.js';
import { testConfig } from '../support/service.js';
import { watchForAbsence } from '../support/wait.js';
import { bookId, progressUrl, published } from '../server/http.js';

/**
 * A server on a healthy three-master cluster with sharded pub/sub, re-reading the slot map
 * every REFRESH_MS: streams opened together stay open, and nothing is taken for a moved slot.
 */
const REFRESH_MS = 150;
/** Several slot-map refreshes: each one would take a slot whose adds raced for moved. */
const REFRESHES_WATCHED = 8;

let cluster: RedisCluster;
let database: TestDatabase;
let service: Service;
const logLines: string[] = [];
const watches: Watch[] = [];

beforeAll(async () => {
  [cluster, database] = await Promise.all([RedisCluster.start(3, 0), createTestDatabase()]);
  const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
  const config = testConfig({ REDIS_URL: undefined, REDIS_CLUSTER_NODES: cluster.seeds, REDIS_CLUSTER_SLOTS_REFRESH_MS: String(REFRESH_MS), DATABASE_URL: database.url, MAX_GENERATIONS: '0' });
  service = await startService(config, log);
}, 90_000);

afterEach(() => {
  for (const watch of watches.splice(0)) watch.close();
  logLines.length = 0;
});

afterAll(async () => {
  await service?.close();
  await Promise.allSettled([cluster?.stop(), database?.drop()]);
});

function open(url: string): Watch {
  const watch = new Watch(url);
  watches.push(watch);
  return watch;
}

const moved = () => logLines.filter((line) => line.includes('moved to their current masters'));

async function brokerLive(): Promise<string | undefined> {
  const text = await (await fetch(`${service.url}/metrics`)).text();
  return text.split('\n').find((line) => line.startsWith('booksai_broker_live '));
}

/** Every stream stays open through several slot-map refreshes, none is taken for moved, and each still delivers. */
async function expectStaysOpen(everyBook: Watch, books: Array<{ id: string; watch: Watch }>): Promise<void> {
  const all = [everyBook, ...books.map((b) => b.watch)];
  await Promise.all(all.map((w) => w.opened(10_000)));
  await watchForAbsence(REFRESH_MS * REFRESHES_WATCHED);
  expect(moved(), 'no slot was taken for moved').toEqual([]);
  for (const watch of all) {
    expect(watch.errors, `${watch.source.url} never ended`).toBe(0);
    expect(watch.source.readyState).toBe(EventSource.OPEN);
  }
  expect(await brokerLive(), 'the poll fast path stays on').toBe('booksai_broker_live 1');
  const states = await Promise.all(books.map(({ id }) => published(service.url, id, { status: 'GENERATING', message: 'still delivered' })));
  await Promise.all(books.map(({ watch }, i) => watch.version(states[i]!.version)));
  await Promise.all(states.map((state) => everyBook.next((s) => s.bookId === state.bookId && s.version === state.version, 5_000, `${state.bookId} on the every-book stream`)));
  expect(everyBook.errors).toBe(0);
}

describe('streams on a healthy cluster', () => {
  it('keeps the every-book stream and a book\'s stream opened at the same moment open', async () => {
    const id = bookId('together');
    const everyBook = open(`${service.url}/api/ai/stream`);
    const book = open(`${progressUrl(service.url, id)}/stream`);
    await expectStaysOpen(everyBook, [{ id, watch: book }]);
  }, 30_000);

  it('keeps many books\' streams opened at once open, with the every-book stream', async () => {
    const ids = Array.from({ length: 60 }, (_, i) => bookId(`many-${i}`));
    const books = ids.map((id) => ({ id, watch: open(`${progressUrl(service.url, id)}/stream`) }));
    const everyBook = open(`${service.url}/api/ai/stream`);
    await expectStaysOpen(everyBook, books);
  }, 30_000);
});
