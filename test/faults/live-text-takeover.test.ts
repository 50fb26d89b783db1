import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisBroker } from '../../src/broker/redis.js';
import type { RedisTarget } from '../../src/config.js';
import { DEFAULT_BACKEND_TIMEOUT_MS, DEFAULT_CLUSTER_SLOTS_REFRESH_MS } from '../../src/config.js';
import { RedisTextLog } from '../../src/broker/redis-text.js';
import type { TextChunk } from '../../src/broker/text-log.js';
import { REDIS_URL, uniquePrefix } from '../support/backends.js';
import { chapterRows, createBook, pollState } from '../support/books.js';
import { RedisCluster } from '../support/redis-cluster.js';
import type { CreatedBook } from '../support/books.js';
import type { ServerProcess } from '../support/server-process.js';
import { silentLog } from '../support/service.js';
import { until } from '../support/wait.js';
import { fleetOfServers } from './fleet.js';

/**
 * The live text of a book whose runner dies or freezes mid-section: the successor starts the
 * section over with a reset, a reader never gets the old partial text glued to the new one, and
 * the text it ends with is the saved chapters', byte for byte.
 */

const fleet = fleetOfServers();
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** A reader of every book's text under `prefix`, in the test process, as a server's hub would be. */
async function textReader(prefix: string, target: RedisTarget = { kind: 'single', url: REDIS_URL }) {
  const broker = new RedisBroker({ timeoutMs: DEFAULT_BACKEND_TIMEOUT_MS, target, keyPrefix: prefix, ttlSeconds: 600, log: silentLog });
  if (!(await broker.ready(5_000))) throw new Error('redis is not answering');
  const texts = new RedisTextLog({ broker, keyPrefix: prefix, ttlSeconds: 600, log: silentLog });
  const chunks: TextChunk[] = [];
  const stop = await texts.subscribeAllText((chunk) => chunks.push(chunk));
  closers.push(async () => {
    stop();
    texts.close();
    await broker.close();
  });
  return { texts, chunks };
}

/**
 * Replays `chunks` of one book as a reader does: a reset empties its section, every other chunk
 * must start exactly where the section's text ends (no gap, no overlap). Returns each chapter's text.
 */
function replay(chunks: readonly TextChunk[], book: CreatedBook): Map<number, string> {
  const sections = new Map<string, Buffer>();
  for (const chunk of chunks) {
    if (chunk.bookId !== book.bookId) continue;
    const key = `${chunk.chapter}:${chunk.section}`;
    if (chunk.reset) {
      sections.set(key, Buffer.alloc(0));
      continue;
    }
    const held = sections.get(key) ?? Buffer.alloc(0);
    expect(chunk.offset, `chunk of ${key} at its section's length`).toBe(held.length);
    sections.set(key, Buffer.concat([held, Buffer.from(chunk.text)]));
  }
  const chapters = new Map<number, string>();
  for (let chapter = 1; chapter <= book.chapters; chapter++) {
    const parts = Array.from({ length: book.sectionsPerChapter }, (_, i) => sections.get(`${chapter}:${i + 1}`)?.toString() ?? '');
    chapters.set(chapter, parts.join('\n\n'));
  }
  return chapters;
}

/** Waits until the runner is part-way through a section of chapter 2 (chapter 1 saved, chapter 2 not). */
async function midChapterTwo(texts: RedisTextLog, book: CreatedBook): Promise<void> {
  await until(
    async () => {
      const current = await texts.current(book.bookId);
      if (current?.chapter !== 2) return false;
      const held = await texts.read(book.bookId, 2, current.section);
      return held !== null && held.length > 0 && (await chapterRows(fleet.sql, book.bookId)).length === 1;
    },
    30_000,
    'the runner part-way through chapter 2',
  );
}

async function expectTextEqualsPostgres(chunks: readonly TextChunk[], book: CreatedBook): Promise<void> {
  const rows = await chapterRows(fleet.sql, book.bookId);
  expect(rows).toHaveLength(book.chapters);
  const replayed = replay(chunks, book);
  for (const row of rows) expect(replayed.get(row.number), `chapter ${row.number} as a reader got it`).toBe(row.content);
  // Chapter 2 was started over by the successor: its readers were told with a reset.
  const resets = chunks.filter((c) => c.bookId === book.bookId && c.reset && c.chapter === 2);
  expect(resets.length).toBeGreaterThan(0);
  expect(resets.every((c) => c.offset === 0 && c.text === '' && c.attempt >= 2)).toBe(true);
}

describe('live text across a takeover', () => {
  // The demo's realistic pace (40 tokens/s): a section takes about a second, so the fault lands part-way through one.
  const paced = (prefix: string) => ({ REDIS_KEY_PREFIX: prefix, RUN_LEASE_MS: '1500', DEMO_STEP_MS: '50', DEMO_TOKENS_PER_SECOND: '40' });

  it('SIGKILL mid-section: the successor resets the section, and the text a reader ends with equals Postgres', async () => {
    const prefix = uniquePrefix();
    const reader = await textReader(prefix);
    const first = await fleet.start(paced(prefix));
    const second = await fleet.start(paced(prefix));
    const book = await createBook(first.url, 'Killed mid-sentence', 3, 2);
    await midChapterTwo(reader.texts, book);
    expect(await first.stop('SIGKILL')).toBeNull();
    await until(async () => (await pollState(second.url, book.bookId))?.status === 'COMPLETE', 60_000, 'the book to complete on the second instance');
    await expectTextEqualsPostgres(reader.chunks, book);
  }, 120_000);

  it("SIGSTOP mid-section past the lease: the woken runner's appends are refused by the fence", async () => {
    const prefix = uniquePrefix();
    const reader = await textReader(prefix);
    const frozen: ServerProcess = await fleet.start(paced(prefix));
    const successor = await fleet.start(paced(prefix));
    const book = await createBook(frozen.url, 'Frozen mid-sentence', 3, 2);
    await midChapterTwo(reader.texts, book);
    frozen.signal('SIGSTOP');
    // The successor holds the book once it started chapter 2 over.
    await until(() => reader.chunks.some((c) => c.bookId === book.bookId && c.reset === true), 20_000, 'the successor to reset chapter 2');
    frozen.signal('SIGCONT');
    await until(() => /lost the lease of a run|run superseded/.test(frozen.output), 15_000, 'the woken runner to stop its run');
    await until(async () => (await pollState(successor.url, book.bookId))?.status === 'COMPLETE', 60_000, 'the book to complete on the successor');
    await expectTextEqualsPostgres(reader.chunks, book);
  }, 120_000);
});

describe('live text across a takeover on a Redis Cluster', () => {
  let cluster: RedisCluster | undefined;
  beforeAll(async () => {
    cluster = await RedisCluster.start();
  }, 90_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('SIGKILL mid-section: the reset and the final text equal to Postgres, through the sharded channels and feeds', async () => {
    const prefix = uniquePrefix();
    const nodes = cluster!.seeds.split(',').map((entry) => ({ host: '127.0.0.1', port: Number(entry.split(':')[1]) }));
    const reader = await textReader(prefix, { kind: 'cluster', nodes, pubsub: 'sharded', password: null, tls: false, slotsRefreshMs: DEFAULT_CLUSTER_SLOTS_REFRESH_MS });
    const env = { REDIS_KEY_PREFIX: prefix, REDIS_URL: '', REDIS_CLUSTER_NODES: cluster!.seeds, RUN_LEASE_MS: '1500', DEMO_STEP_MS: '50', DEMO_TOKENS_PER_SECOND: '40' };
    const first = await fleet.start(env);
    const second = await fleet.start(env);
    const book = await createBook(first.url, 'Killed on a cluster', 3, 2);
    await midChapterTwo(reader.texts, book);
    expect(await first.stop('SIGKILL')).toBeNull();
    await until(async () => (await pollState(second.url, book.bookId))?.status === 'COMPLETE', 60_000, 'the book to complete on the second instance');
    await expectTextEqualsPostgres(reader.chunks, book);
  }, 120_000);
});
