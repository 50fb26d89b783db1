/**
 * The publisher process: updates a range of books at a fixed rate per book, spread evenly in
 * time, each state stamped with its publish time. Modes, one per kind of target:
 * - commit: the server's own Lua commit (state key with TTL, dirty set, PUBLISH), as any
 *   publisher following docs/protocol.md does;
 * - publish: a bare PUBLISH of the same JSON on the same channel (B3);
 * - socketio: `io.to(book).emit('progress', json)` through @socket.io/redis-adapter;
 * - http: `POST /api/ai/progress/:bookId` with a partial update to BENCH_TARGET_URL, as an
 *   orchestrator in another process publishes (the server assigns the version and stamps the
 *   time; B3 answers the same POST with a bare PUBLISH).
 */
import { Agent, request } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { redisKeys } from '../../src/broker/keys.js';
import { textKeys } from '../../src/broker/redis-text.js';
import { COMMIT } from '../../src/broker/scripts.js';
import { emit, serveCommands } from '../support/commands.js';
import type { Command } from '../support/commands.js';
import { REDIS_URL, STATE_TTL_SECONDS, bookId, stateJson } from '../support/fixtures.js';
import type { BookRange } from '../support/fixtures.js';
import { Histogram } from '../support/histogram.js';

export type PublishMode = 'commit' | 'publish' | 'socketio' | 'http';

export interface RunCommand {
  books: BookRange;
  /** Updates per second of each book. */
  hz: number;
  durationMs: number;
}

/** The version each book holds: 1 when seeded, then whatever this process published last. */
const held = new Map<string, number>();

const TICK_MS = 5;
/** Past this many unanswered commands the publisher waits instead of queueing more. */
const MAX_IN_FLIGHT = 20_000;
const DRAIN_TIMEOUT_MS = 10_000;
const MAX_LIFE_MS = 30 * 60_000;

const mode = (process.env.BENCH_PUBLISH_MODE ?? 'commit') as PublishMode;
const keys = redisKeys(process.env.BENCH_KEY_PREFIX ?? 'bench:');
const texts = textKeys(process.env.BENCH_KEY_PREFIX ?? 'bench:', false);
const socketIoKey = process.env.BENCH_SOCKETIO_KEY ?? 'socket.io';
const targetUrl = new URL(process.env.BENCH_TARGET_URL ?? 'http://127.0.0.1:3000');
/** Kept-alive connections for the HTTP publishes: a few suffice at (c)'s 200/s. */
const agent = new Agent({ keepAlive: true, maxSockets: 16 });

type CommitRedis = Redis & {
  progressCommit(...args: Array<string | number>): Promise<1 | -1 | [0, string]>;
};

const redis = new Redis(REDIS_URL, { enableAutoPipelining: true, maxRetriesPerRequest: 1 }) as CommitRedis;
redis.defineCommand('progressCommit', { numberOfKeys: 4, lua: COMMIT });
let io: Server | null = null;
let subscriber: Redis | null = null;
if (mode === 'socketio') {
  subscriber = new Redis(REDIS_URL);
  io = new Server();
  io.adapter(createAdapter(redis, subscriber, { key: socketIoKey }));
}

/** POSTs an update of `id`; resolves to the version the target answered with. */
function post(id: string, version: number): Promise<number> {
  const body = JSON.stringify({ message: `Writing part ${version}`, currentChapter: 3, totalChapters: 12 });
  return new Promise((resolve, reject) => {
    const req = request(
      { agent, host: targetUrl.hostname, port: targetUrl.port, method: 'POST', path: `/api/ai/progress/${id}`, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`POST answered ${res.statusCode}: ${text.slice(0, 200)}`));
          resolve((JSON.parse(text) as { data: { version: number } }).data.version);
        });
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

/**
 * Sends one state; resolves to the version the target holds after it, or null when the target
 * did not take it (a commit can lose to another writer). `version`: the one this process assigns.
 */
function send(id: string, version: number): Promise<number | null> {
  if (mode === 'http') return post(id, version);
  const json = stateJson(id, version, Date.now());
  if (mode === 'commit') {
    const expected = String(version - 1);
    // As the server's RedisBroker.commit calls it (docs/protocol.md): no fence, PUBLISH, no feed.
    const commitKeys = [keys.state(id), keys.dirty(0), keys.fence(id), texts.meta(id)];
    const args = [expected, json, STATE_TTL_SECONDS, keys.channel(id), id, '', 'PUBLISH', '', STATE_TTL_SECONDS, texts.sectionPrefix(id)];
    return redis.progressCommit(...commitKeys, ...args).then((reply) => (reply === 1 ? version : null));
  }
  if (mode === 'publish') return redis.publish(keys.channel(id), json).then(() => version);
  io!.to(id).emit('progress', json);
  return Promise.resolve(version);
}

async function run(command: RunCommand): Promise<void> {
  const { books, hz, durationMs } = command;
  const ids = Array.from({ length: books.count }, (_, i) => bookId(books, books.first + i));
  const versions = ids.map((id) => held.get(id) ?? 1);
  const finalVersions = [...versions];
  const rate = books.count * hz;
  const total = Math.round((rate * durationMs) / 1000);
  let sent = 0;
  let acked = 0;
  let failed = 0;
  let firstFailure: string | null = null;
  let rejected = 0;
  let inFlight = 0;
  /** Time from sending a state to Redis' reply (Socket.IO's emit has no reply: not measured). */
  const ackMs = new Histogram();
  const started = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - started;
      const due = Math.min(total, Math.floor((elapsed / 1000) * rate));
      while (sent < due && inFlight < MAX_IN_FLIGHT) {
        const b = sent % books.count;
        const version = ++versions[b]!;
        sent++;
        inFlight++;
        const sentAt = performance.now();
        send(ids[b]!, version).then(
          (taken) => {
            inFlight--;
            if (mode !== 'socketio') ackMs.record(performance.now() - sentAt);
            if (taken === null) return void rejected++;
            acked++;
            if (taken > finalVersions[b]!) finalVersions[b] = taken;
          },
          (error: Error) => {
            inFlight--;
            failed++;
            firstFailure ??= error.message;
          },
        );
      }
      if (sent >= total || elapsed > durationMs + DRAIN_TIMEOUT_MS) {
        clearInterval(timer);
        resolve();
      }
    }, TICK_MS);
  });
  const publishedMs = performance.now() - started;
  for (let waited = 0; inFlight > 0 && waited < DRAIN_TIMEOUT_MS; waited += 10) await new Promise((r) => setTimeout(r, 10));
  // Over HTTP the target assigns versions: the next run goes on from what it answered.
  ids.forEach((id, b) => held.set(id, mode === 'http' ? finalVersions[b]! : versions[b]!));
  emit({ evt: 'published', sent, acked, failed, firstFailure, rejected, inFlight, publishedMs, rate: (1000 * acked) / publishedMs, ackMs: ackMs.summary(), finalVersions });
}

async function handle(command: Command): Promise<void> {
  if (command.cmd !== 'run') throw new Error(`unknown publisher command ${command.cmd}`);
  await run(command as unknown as RunCommand);
}

await redis.ping();
if (subscriber) await subscriber.ping();
emit({ evt: 'ready' });
serveCommands(handle, {
  maxLifeMs: MAX_LIFE_MS,
  onExit: async () => {
    io?.close();
    agent.destroy();
    redis.disconnect();
    subscriber?.disconnect();
  },
});
