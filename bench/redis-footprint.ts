/**
 * Redis memory per book (issue 24, docs/performance.md "Redis memory per book"): on a
 * redis-server of its own (a free port, no persistence), writes a running and a finished book as
 * the server does (state, fence, live-text hash), reads MEMORY USAGE of each key, then writes
 * 100,000 such books and reads the INFO memory `used_memory` delta. Both with the plain JSON
 * value and with a compact one (raw deflate with a preset dictionary of the schema's field names
 * and enum values, behind a `c1:<version>:` prefix). Prints a Markdown table, and the memory of a
 * day of 100,000 finished books under the old (24 h) and the new (1 h) TTL.
 * `npx tsx bench/redis-footprint.ts` (BOOKS=100000).
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { Redis } from 'ioredis';
import { STATUSES, STEPS } from '../src/progress/schema.js';
import type { BookProgress } from '../src/progress/schema.js';
import { RedisProcess } from '../test/support/redis-process.js';

const BOOKS = Number(process.env.BOOKS ?? 100_000);
const PREFIX = 'booksai:';
const BATCH = 2_000;

/** Field names and enum values, as they appear in a state: what deflate can point back at. */
const DICTIONARY = Buffer.from(
  [
    '{"bookId":"',
    ...STATUSES.map((s) => `","status":"${s}"`),
    ...STEPS.map((s) => `,"generationStep":"${s}"`),
    ',"currentChapter":',
    ',"totalChapters":',
    ',"currentSection":',
    ',"totalSections":',
    ',"overallProgress":',
    ',"message":"Writing Chapter ',
    ',"message":"Book generation complete"',
    ',"error":"',
    ',"timestamp":17',
    ',"startTime":17',
    ',"estimatedEndTime":17',
    ',"estimatedEndTimeLate":17',
    ',"tenant":"',
    '","version":',
  ].join(''),
);

function compact(state: BookProgress): Buffer {
  return Buffer.concat([Buffer.from(`c1:${state.version}:`), deflateRawSync(JSON.stringify(state), { dictionary: DICTIONARY })]);
}

function expand(value: Buffer): string {
  const body = value.subarray(value.indexOf(':', 3) + 1);
  return inflateRawSync(body, { dictionary: DICTIONARY }).toString('utf8');
}

const bookId = (i: number) => `${(0x10000000 + i).toString(16)}-7b4d-4e8a-9f60-2c1d5b7e8a90`;

function running(id: string, i: number): BookProgress {
  return {
    bookId: id,
    status: 'GENERATING',
    generationStep: 'CHAPTERS',
    currentChapter: 4,
    totalChapters: 12,
    currentSection: 2,
    totalSections: 3,
    overallProgress: 41.7,
    message: 'Writing Chapter 4 of 12...',
    timestamp: 1_795_716_056_477 + i,
    startTime: 1_795_715_801_000 + i,
    estimatedEndTime: 1_795_716_420_000 + i,
    estimatedEndTimeLate: 1_795_716_600_000 + i,
    tenant: 'acme-publishing',
    version: 57,
  } as BookProgress;
}

function finished(id: string, i: number): BookProgress {
  return {
    bookId: id,
    status: 'COMPLETE',
    generationStep: 'COMPLETE',
    currentChapter: 12,
    totalChapters: 12,
    currentSection: 3,
    totalSections: 3,
    overallProgress: 100,
    message: 'Book generation complete',
    timestamp: 1_795_716_456_477 + i,
    startTime: 1_795_715_801_000 + i,
    tenant: 'acme-publishing',
    version: 131,
  } as BookProgress;
}

type Kind = 'running' | 'finished';
type Encoding = 'json' | 'compact';

/** The text hash of a book written by the server's orchestrator: an attempt per section begun, and the current one. */
function textHash(kind: Kind): Record<string, string> {
  const [chapters, sections] = kind === 'running' ? [4, 2] : [12, 3];
  const hash: Record<string, string> = { current: `${chapters}:${sections}` };
  for (let c = 1; c <= chapters; c++) for (let s = 1; s <= (c < chapters ? 3 : sections); s++) hash[`${c}:${s}`] = '1';
  return hash;
}

function write(pipeline: ReturnType<Redis['pipeline']>, kind: Kind, encoding: Encoding, i: number): void {
  const id = bookId(i);
  const state = kind === 'running' ? running(id, i) : finished(id, i);
  const ttl = kind === 'running' ? 86_400 : 3_600;
  pipeline.set(`${PREFIX}progress:${id}`, encoding === 'json' ? JSON.stringify(state) : compact(state), 'EX', ttl);
  pipeline.set(`${PREFIX}fence:${id}`, String(1_000 + i), 'EX', ttl);
  pipeline.hset(`${PREFIX}textmeta:${id}`, textHash(kind));
  pipeline.expire(`${PREFIX}textmeta:${id}`, ttl);
}

async function usedMemory(redis: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
}

interface Row {
  kind: Kind;
  encoding: Encoding;
  valueBytes: number;
  state: number;
  fence: number;
  hash: number;
  /** INFO memory used_memory delta per book, over BOOKS books. */
  perBook: number;
}

async function measure(redis: Redis, kind: Kind, encoding: Encoding): Promise<Row> {
  await redis.flushall();
  const sample = redis.pipeline();
  write(sample, kind, encoding, 0);
  await sample.exec();
  const id = bookId(0);
  const usage = async (key: string) => Number(await redis.memory('USAGE', key, 'SAMPLES', '0'));
  const raw = await redis.getBuffer(`${PREFIX}progress:${id}`);
  const expected = JSON.stringify(kind === 'running' ? running(id, 0) : finished(id, 0));
  if (encoding === 'compact' && expand(raw!) !== expected) throw new Error('the compact value does not round-trip');
  const row = {
    kind,
    encoding,
    valueBytes: raw!.length,
    state: await usage(`${PREFIX}progress:${id}`),
    fence: await usage(`${PREFIX}fence:${id}`),
    hash: await usage(`${PREFIX}textmeta:${id}`),
  };
  await redis.flushall();
  const before = await usedMemory(redis);
  for (let from = 0; from < BOOKS; from += BATCH) {
    const pipeline = redis.pipeline();
    for (let i = from; i < Math.min(from + BATCH, BOOKS); i++) write(pipeline, kind, encoding, i);
    await pipeline.exec();
  }
  const perBook = ((await usedMemory(redis)) - before) / BOOKS;
  return { ...row, perBook };
}

const server = await RedisProcess.start();
const redis = new Redis(server.url);
try {
  const rows: Row[] = [];
  for (const kind of ['running', 'finished'] as const) for (const encoding of ['json', 'compact'] as const) rows.push(await measure(redis, kind, encoding));
  const version = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1];
  const f = (n: number) => Math.round(n).toLocaleString('en-US');
  console.log(`Redis ${version}, ${f(BOOKS)} books per row; MEMORY USAGE per key (SAMPLES 0), used_memory delta per book.\n`);
  console.log('| book | value | value bytes | state key | fence key | text hash | sum of keys | used_memory / book | state key vs JSON | book vs JSON |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    const json = rows.find((o) => o.kind === r.kind && o.encoding === 'json')!;
    const pct = (a: number, b: number) => (r.encoding === 'json' ? '' : `${(((a - b) / b) * 100).toFixed(0)} %`);
    console.log(
      `| ${r.kind} | ${r.encoding} | ${f(r.valueBytes)} | ${f(r.state)} | ${f(r.fence)} | ${f(r.hash)} | ${f(r.state + r.fence + r.hash)} | ${f(r.perBook)} | ${pct(r.state, json.state)} | ${pct(r.perBook, json.perBook)} |`,
    );
  }
  const day = 100_000;
  console.log('\nA day of 100,000 finished books (finishing evenly; a book is held for its TTL after it finishes):\n');
  console.log('| value | per finished book | TTL 24 h (before): 100,000 held | TTL 1 h (TERMINAL_TTL_SECONDS): 4,167 held |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const r of rows.filter((o) => o.kind === 'finished')) {
    const mb = (books: number) => `${(books * r.perBook / 1e6).toFixed(1)} MB`;
    console.log(`| ${r.encoding} | ${f(r.perBook)} B | ${mb(day)} | ${mb(day / 24)} |`);
  }
} finally {
  redis.disconnect();
  await server.stop();
}
