/**
 * `npm run bench:overload [-- --quick]`: admission control under a ramp of new work (issue 25).
 *
 * One server process (real Redis and Postgres, the default OVERLOAD_LOOP_DELAY_MS) with 100
 * admitted SSE watchers on 10 books that a publisher commits to Redis at 10 Hz each (the
 * docs/protocol.md commit, stamped with its time). On top, new clients at a rising rate: each
 * either opens a new stream (held 2 s) or publishes over HTTP. The ramp doubles the rate until
 * new clients are refused; capacity is the last rate with none refused. Then capacity and
 * 3 × capacity run for a measured window each.
 *
 * Floors: the p99 of deliveries (commit to admitted watcher) at 3 × capacity is at most twice
 * its value at capacity, and every new client refused got a 503 with Retry-After, none a
 * timeout or a reset.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { redisKeys } from '../src/broker/keys.js';
import { textKeys } from '../src/broker/redis-text.js';
import { DEFAULT_TERMINAL_TTL_SECONDS } from '../src/config.js';
import { COMMIT } from '../src/broker/scripts.js';
import { ServerProcess } from '../test/support/server-process.js';
import { SseConnection } from './load/sse-connection.js';
import { REDIS_URL, STATE_TTL_SECONDS, deleteKeys, stateJson } from './support/fixtures.js';
import { Histogram } from './support/histogram.js';
import { POSTGRES_HOST, POSTGRES_PORT, createDatabase, dropDatabase } from './support/postgres.js';

const quick = process.argv.includes('--quick');
const loopDelayAt = process.argv.indexOf('--loop-delay-ms');
const loopDelayMs = loopDelayAt < 0 ? null : (process.argv[loopDelayAt + 1] ?? null);
const WATCHED_BOOKS = 10;
const WATCHERS = 100;
const PUBLISH_HZ = 10;
const STEP_MS = quick ? 3_000 : 5_000;
const MEASURE_MS = quick ? 5_000 : 15_000;
const FIRST_RATE = 25;
const MAX_RATE = 6_400;
/** A new client that got no answer in this long counts as a timeout: what admission control must prevent. */
const CLIENT_TIMEOUT_MS = 5_000;
const STREAM_HOLD_MS = 2_000;

interface Outcomes {
  admitted: number;
  refused503: number;
  refusedWithoutRetryAfter: number;
  timeouts: number;
  errors: number;
}

const none = (): Outcomes => ({ admitted: 0, refused503: 0, refusedWithoutRetryAfter: 0, timeouts: 0, errors: 0 });

const runId = randomBytes(4).toString('hex');
const prefix = `bench-overload:${runId}:`;
const keys = redisKeys(prefix);
const texts = textKeys(prefix, false);
const databaseName = `booksai_bench_overload_${runId}`;
const log = (line: string) => console.log(`[overload] ${line}`);

let deliveries = new Histogram();
let measuring = 0;

function watch(server: ServerProcess, bookId: string): SseConnection {
  const url = new URL(server.url);
  return new SseConnection(url.hostname, Number(url.port), `/api/ai/progress/${bookId}/stream`, {
    onOpen: (status) => {
      if (status !== 200) log(`an admitted watcher was refused: ${status}`);
    },
    onEvent: (_id, data) => {
      const stamp = (JSON.parse(data) as { timestamp: number }).timestamp;
      if (measuring > 0 && stamp >= measuring) deliveries.record(Date.now() - stamp);
    },
    onClose: (error) => {
      if (measuring > 0) log(`an admitted watcher closed: ${error?.message ?? 'ended'}`);
    },
  });
}

/** Commits to the watched books at PUBLISH_HZ each, as an outside publisher following docs/protocol.md. */
function publisher(redis: Redis): () => void {
  const versions = new Map<string, number>();
  const timer = setInterval(() => {
    for (let b = 0; b < WATCHED_BOOKS; b++) {
      const id = `watched-${b}`;
      const held = versions.get(id) ?? 0;
      versions.set(id, held + 1);
      const partition = keys.partitionOf(id);
      void redis
        // The arguments src/broker/redis.ts commit() passes.
        .eval(COMMIT, 4, keys.state(id), keys.dirty(partition), keys.fence(id), texts.meta(id), held === 0 ? '' : String(held), stateJson(id, held + 1, Date.now()), STATE_TTL_SECONDS, keys.channel(id), id, '', 'PUBLISH', keys.feed(partition) ?? '', DEFAULT_TERMINAL_TTL_SECONDS, texts.sectionPrefix(id))
        .catch((error: Error) => log(`commit failed: ${error.message}`));
    }
  }, 1_000 / PUBLISH_HZ);
  return () => clearInterval(timer);
}

/** One new client: a stream held for a while, or a publish. */
async function newClient(server: ServerProcess, n: number, outcomes: Outcomes): Promise<void> {
  const signal = AbortSignal.timeout(CLIENT_TIMEOUT_MS);
  try {
    const res =
      n % 2 === 0
        ? await fetch(`${server.url}/api/ai/progress/watched-${n % WATCHED_BOOKS}/stream`, { signal })
        : await fetch(`${server.url}/api/ai/progress/churn-${n % 50}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ status: 'GENERATING', generationStep: 'CHAPTERS', message: `client ${n}` }),
            signal,
          });
    if (res.status === 503) {
      outcomes.refused503++;
      if (res.headers.get('retry-after') === null) outcomes.refusedWithoutRetryAfter++;
      await res.body?.cancel();
    } else if (res.ok) {
      outcomes.admitted++;
      if (n % 2 === 0) setTimeout(() => void res.body?.cancel().catch(() => {}), STREAM_HOLD_MS);
      else await res.body?.cancel();
    } else {
      outcomes.errors++;
      await res.body?.cancel();
    }
  } catch (error) {
    if ((error as Error).name === 'TimeoutError') outcomes.timeouts++;
    else outcomes.errors++;
  }
}

/** New clients at `rate` per second for `ms`; resolves with their outcomes once every one is answered. */
async function load(server: ServerProcess, rate: number, ms: number): Promise<Outcomes> {
  const outcomes = none();
  const pending: Array<Promise<void>> = [];
  const started = performance.now();
  let n = 0;
  while (performance.now() - started < ms) {
    const due = Math.floor(((performance.now() - started) / 1_000) * rate);
    for (; n < due; n++) pending.push(newClient(server, n, outcomes));
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await Promise.all(pending);
  return outcomes;
}

async function measured(server: ServerProcess, rate: number): Promise<{ rate: number; p50: number; p99: number; count: number; outcomes: Outcomes }> {
  deliveries = new Histogram();
  measuring = Date.now();
  const outcomes = await load(server, rate, MEASURE_MS);
  measuring = 0;
  const { p50, p99, count } = deliveries.summary();
  return { rate, p50, p99, count, outcomes };
}

async function main(): Promise<number> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  await createDatabase(databaseName);
  let server: ServerProcess | null = null;
  const watchers: SseConnection[] = [];
  let stopPublishing = () => {};
  try {
    server = await ServerProcess.start({
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      DATABASE_URL: `postgres://postgres@${POSTGRES_HOST}:${POSTGRES_PORT}/${databaseName}`,
      MAX_GENERATIONS: '0',
      MAX_CONNECTIONS_PER_USER: '1000000',
      // `--loop-delay-ms N`: the threshold under test (the server's default otherwise).
      ...(loopDelayMs === null ? {} : { OVERLOAD_LOOP_DELAY_MS: loopDelayMs }),
    });
    stopPublishing = publisher(redis);
    await new Promise((resolve) => setTimeout(resolve, 500)); // the books exist before they are watched
    for (let w = 0; w < WATCHERS; w++) watchers.push(watch(server, `watched-${w % WATCHED_BOOKS}`));

    let capacity = 0;
    for (let rate = FIRST_RATE; rate <= MAX_RATE; rate *= 2) {
      const outcomes = await load(server, rate, STEP_MS);
      log(`ramp ${rate}/s: ${JSON.stringify(outcomes)}`);
      if (outcomes.refused503 + outcomes.timeouts + outcomes.errors > 0) break;
      capacity = rate;
    }
    if (capacity === 0) throw new Error(`new clients were refused already at ${FIRST_RATE}/s`);
    const atCapacity = await measured(server, capacity);
    const past = await measured(server, capacity * 3);
    for (const run of [atCapacity, past]) log(`${run.rate}/s: deliveries p50 ${run.p50} ms, p99 ${run.p99} ms (${run.count}); new clients ${JSON.stringify(run.outcomes)}`);

    const floors = [
      { name: 'admitted deliveries p99 at 3 × capacity ≤ 2 × at capacity', measured: `${past.p99} ms vs ${atCapacity.p99} ms`, pass: past.p99 <= 2 * Math.max(atCapacity.p99, 1) },
      { name: 'every refused new client got 503 + Retry-After (no timeout, no reset)', measured: JSON.stringify(past.outcomes), pass: past.outcomes.timeouts === 0 && past.outcomes.errors === 0 && past.outcomes.refusedWithoutRetryAfter === 0 },
    ];
    for (const f of floors) console.log(`${f.pass ? 'PASS' : 'FAIL'}  ${f.name}: ${f.measured}`);
    return floors.every((f) => f.pass) ? 0 : 1;
  } finally {
    stopPublishing();
    for (const w of watchers) w.close();
    await server?.stop().catch(() => {});
    await dropDatabase(databaseName).catch(() => {});
    await deleteKeys(redis, prefix).catch(() => {});
    redis.disconnect();
  }
}

process.exitCode = await main().catch((error: unknown) => {
  console.error(error);
  return 1;
});
