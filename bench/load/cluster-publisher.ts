/**
 * The cluster scenario's publisher process: commits through the server's own RedisBroker (so
 * one Redis, or a cluster with its keys, SPUBLISH and partition feeds) at a fixed rate spread
 * over the books, each state stamped with its publish time. Prints one JSON line when done.
 */
import { pino } from 'pino';
import { RedisBroker } from '../../src/broker/redis.js';
import { DEFAULT_BACKEND_TIMEOUT_MS } from '../../src/config.js';
import type { RedisTarget } from '../../src/config.js';
import type { BookProgress } from '../../src/progress/schema.js';

const target = JSON.parse(process.env.BENCH_REDIS ?? '') as RedisTarget;
const books = Number(process.env.BENCH_BOOKS);
const rate = Number(process.env.BENCH_RATE);
const durationMs = Number(process.env.BENCH_DURATION_MS);
const broker = new RedisBroker({ target, keyPrefix: process.env.BENCH_KEY_PREFIX ?? 'bench:', ttlSeconds: 3_600, log: pino({ level: 'warn' }), timeoutMs: DEFAULT_BACKEND_TIMEOUT_MS });
if (!(await broker.ready(10_000))) throw new Error('redis is not answering');

const ids = Array.from({ length: books }, (_, i) => `cluster-bench-${i}`);
const versions = ids.map(() => 0);
const state = (i: number, version: number): BookProgress => ({
  bookId: ids[i] as string,
  status: 'GENERATING',
  generationStep: 'CHAPTERS',
  currentChapter: 3,
  totalChapters: 12,
  currentSection: 1,
  totalSections: 4,
  overallProgress: version % 100,
  message: 'Writing chapter 3 of 12',
  timestamp: Date.now(),
  version,
});

// Version 1 of every book first, so watchers have a state to start from.
await Promise.all(ids.map((_, i) => broker.commit(state(i, (versions[i] = 1)), null)));
process.stdout.write(`${JSON.stringify({ evt: 'seeded' })}\n`);
await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));

let sent = 0;
let acked = 0;
let failed = 0;
const started = performance.now();
const total = Math.round((rate * durationMs) / 1000);
const inFlight = new Set<Promise<void>>();
await new Promise<void>((resolve) => {
  const timer = setInterval(() => {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
    while (sent < due) {
      const i = sent++ % books;
      const version = ++versions[i]!;
      const commit = broker.commit(state(i, version), version - 1).then(
        (result) => void (result.committed ? acked++ : failed++),
        () => void failed++,
      );
      inFlight.add(commit);
      void commit.finally(() => inFlight.delete(commit));
    }
    if (sent >= total) {
      clearInterval(timer);
      resolve();
    }
  }, 5);
});
await Promise.all(inFlight);
const elapsedMs = performance.now() - started;
process.stdout.write(`${JSON.stringify({ evt: 'done', sent, acked, failed, commitsPerSecond: (1000 * acked) / elapsedMs })}\n`);
await broker.close();
process.exit(0);
