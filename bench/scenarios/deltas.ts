/**
 * Delta updates on the wire (issue 24): bytes per delivered event and server CPU per delivered
 * event, without and with `delta=merge-patch`, in the same run, each on a fresh server:
 * - demo: N clients on the every-book stream while one demo book (3 chapters of 2 sections) is generated;
 * - fan-out (a): N clients, each on its own book, each book updated once a second;
 * - fan-out (b): N clients on one book updated 10 times a second.
 * Bytes are the response bodies after the head (chunk framing, retry hint and heartbeats
 * included), over the progress and patch events received. CPU is the server process's user +
 * system time from /proc over the window, over the events delivered.
 */
import { Redis } from 'ioredis';
import { redisKeys } from '../../src/broker/keys.js';
import { COMMIT } from '../../src/broker/scripts.js';
import { SseConnection } from '../load/sse-connection.js';
import { REDIS_URL, STATE_TTL_SECONDS, bookId, seedBooks, stateJson } from '../support/fixtures.js';
import type { BookRange } from '../support/fixtures.js';
import { cpuSeconds } from '../support/proc.js';
import { HOST, startServer } from '../support/targets.js';
import type { BenchContext, Target } from '../support/targets.js';

const PUBLISH_MS = 10_000;
const SETTLE_MS = 3_000;
const START_TIME = Date.now() - 60_000;

type CommitRedis = Redis & {
  progressCommit(state: string, dirty: string, expected: string, json: string, ttl: number, channel: string, id: string): Promise<1 | [0, string]>;
};

export interface DeltaRow {
  scenario: string;
  delta: boolean;
  clients: number;
  events: number;
  patches: number;
  bytes: number;
  cpuSeconds: number;
  repeat?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** N raw SSE clients on `path(i)`, counting events, patches and body bytes. */
async function connectClients(target: Target, count: number, path: (i: number) => string) {
  let events = 0;
  let patches = 0;
  let opened = 0;
  let done = 0;
  /** The book whose terminal state ends the demo (the every-book stream also sends the recent books of earlier runs). */
  let finalOf: string | null = null;
  const connections: SseConnection[] = [];
  let closing = false;
  /** Opens client `i` (again, after a refusal: an overloaded server sheds new streams with 503 + Retry-After). */
  const open = (i: number) => {
    let ok = false;
    connections[i] = new SseConnection(HOST, target.port, path(i), {
      onOpen: (status) => {
        ok = status === 200;
        if (ok) opened++;
      },
      onEvent: (_id, data) => {
        events++;
        // A patch never carries a status unless it changed; the terminal state comes whole.
        if (!data.includes('"status"')) patches++;
        if (finalOf !== null && data.includes(finalOf) && data.includes('"status":"COMPLETE"')) done++;
      },
      onClose: () => {
        if (!ok && !closing) setTimeout(() => open(i), 500);
      },
    });
  };
  for (let i = 0; i < count; i++) {
    open(i);
    if (i % 250 === 249) await sleep(50);
  }
  for (const deadline = performance.now() + 30_000; opened < count && performance.now() < deadline; ) await sleep(50);
  if (opened < count) {
    closing = true;
    connections.forEach((c) => c.close());
    throw new Error(`only ${opened} of ${count} clients connected`);
  }
  return {
    stats: () => ({ events, patches, bytes: connections.reduce((sum, c) => sum + c.bodyBytes, 0) }),
    done: () => done,
    finishWith: (bookId: string) => {
      finalOf = `"bookId":"${bookId}"`;
    },
    close: () => {
      closing = true;
      connections.forEach((c) => c.close());
    },
  };
}

async function publishFor(redis: CommitRedis, prefix: string, books: BookRange, hz: number, ms: number): Promise<void> {
  const keys = redisKeys(prefix);
  const versions = new Array<number>(books.count).fill(1);
  const ticks = Math.round((ms / 1000) * hz);
  const started = performance.now();
  for (let tick = 0; tick < ticks; tick++) {
    const wait = started + (tick * 1000) / hz - performance.now();
    if (wait > 0) await sleep(wait);
    const commits: Array<Promise<unknown>> = [];
    for (let i = 0; i < books.count; i++) {
      const id = bookId(books, books.first + i);
      const version = (versions[i] as number) + 1;
      versions[i] = version;
      // A book's start time stays put from one update to the next (the fan-out bench's fixture moves it).
      commits.push(redis.progressCommit(keys.state(id), keys.dirty(0), String(version - 1), stateJson(id, version, Date.now(), undefined, START_TIME), STATE_TTL_SECONDS, keys.channel(id), id));
    }
    await Promise.all(commits);
  }
}

async function scenario(ctx: BenchContext, redis: CommitRedis, count: number, name: 'demo' | 'fan-out (a)' | 'fan-out (b)', delta: boolean): Promise<DeltaRow> {
  const prefix = `${ctx.runPrefix}${name.replace(/\W/g, '')}-${delta ? 'd' : 'w'}:`;
  const own: BookRange = { prefix: 'a-', first: 0, count: count };
  const one: BookRange = { prefix: 'b-', first: 0, count: 1 };
  if (name === 'fan-out (a)') await seedBooks(redis, prefix, own);
  if (name === 'fan-out (b)') await seedBooks(redis, prefix, one);
  const target = await startServer(ctx, { keyPrefix: prefix, env: { DEMO_STEP_MS: '100' }, name: `deltas-${delta ? 'd' : 'w'}` });
  const query = delta ? '?delta=merge-patch' : '';
  try {
    const path = name === 'demo' ? () => `/api/ai/stream${query}` : name === 'fan-out (a)' ? (i: number) => `/api/ai/progress/${bookId(own, i)}/stream${query}` : () => `/api/ai/progress/${bookId(one, 0)}/stream${query}`;
    const clients = await connectClients(target, count, path);
    await sleep(1_000);
    const before = clients.stats();
    const cpu0 = cpuSeconds(target.pid);
    if (name === 'demo') {
      const res = await fetch(`http://${HOST}:${target.port}/api/books`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ title: 'Bench Book', chapters: 3, sectionsPerChapter: 2 }) });
      if (!res.ok) throw new Error(`POST /api/books: ${res.status}`);
      clients.finishWith(((await res.json()) as { data: { bookId: string } }).data.bookId);
      for (const deadline = performance.now() + 120_000; clients.done() < count && performance.now() < deadline; ) await sleep(100);
      if (clients.done() < count) throw new Error(`only ${clients.done()} clients saw the book complete`);
      await sleep(500);
    } else {
      await publishFor(redis, prefix, name === 'fan-out (a)' ? own : one, name === 'fan-out (a)' ? 1 : 10, PUBLISH_MS);
      await sleep(SETTLE_MS);
    }
    const cpu = cpuSeconds(target.pid) - cpu0;
    const after = clients.stats();
    clients.close();
    return { scenario: name, delta, clients: count, events: after.events - before.events, patches: after.patches - before.patches, bytes: after.bytes - before.bytes, cpuSeconds: cpu };
  } finally {
    await target.stop();
  }
}

/** Every scenario without and then with deltas, `repeats` times. */
export async function runDeltas(ctx: BenchContext, clients: number, repeats: number, log: (line: string) => void): Promise<DeltaRow[]> {
  const redis = new Redis(REDIS_URL, { enableAutoPipelining: true, maxRetriesPerRequest: 1 }) as CommitRedis;
  redis.defineCommand('progressCommit', { numberOfKeys: 2, lua: COMMIT });
  try {
    const rows: DeltaRow[] = [];
    for (const name of ['demo', 'fan-out (a)', 'fan-out (b)'] as const) {
      for (let repeat = 0; repeat < repeats; repeat++) {
        for (const delta of [false, true]) {
          log(`deltas: ${name}, ${delta ? 'with' : 'without'} deltas, ${clients} clients`);
          rows.push({ ...(await scenario(ctx, redis, clients, name, delta)), repeat });
        }
      }
    }
    return rows;
  } finally {
    redis.disconnect();
  }
}

export function deltasTable(rows: readonly DeltaRow[]): string[] {
  const lines = [
    '| scenario | clients | deltas | events delivered | of them patches | bytes / event | server CPU µs / event | bytes: fewer × | CPU × |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const perEvent = (r: DeltaRow) => ({ bytes: r.bytes / Math.max(1, r.events), cpu: (1e6 * r.cpuSeconds) / Math.max(1, r.events) });
  for (const row of rows) {
    const whole = rows.find((r) => r.scenario === row.scenario && r.repeat === row.repeat && !r.delta) as DeltaRow;
    const mine = perEvent(row);
    const base = perEvent(whole);
    lines.push(
      `| ${row.scenario} | ${row.clients.toLocaleString('en')} | ${row.delta ? 'merge-patch' : 'none'} | ${row.events.toLocaleString('en')} | ${row.patches.toLocaleString('en')} | ${mine.bytes.toFixed(0)} | ${mine.cpu.toFixed(1)} | ${(base.bytes / mine.bytes).toFixed(2)} | ${(mine.cpu / base.cpu).toFixed(2)} |`,
    );
  }
  return lines;
}
