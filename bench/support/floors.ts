/** The floors the server is held to (docs/performance.md), checked against one run's figures: each line PASS or FAIL. */
import type { DatabaseResult } from '../scenarios/database.js';
import type { EmbeddedResult } from '../scenarios/embedded.js';
import type { FanoutResult, FanoutRun } from '../scenarios/fanout.js';
import type { PollResult } from '../scenarios/poll.js';

export interface Floor {
  name: string;
  measured: string;
  limit: string;
  pass: boolean;
  note?: string;
}

/** The client count the fan-out and memory floors are stated at. */
export const FLOOR_CLIENTS = 10_000;
const KIB = 1024;

export interface Figures {
  poll: PollResult;
  fanout: FanoutResult;
  database: DatabaseResult;
  embedded: EmbeddedResult;
}

/** Issue 13: the embedded default, after start-up and idle. */
const EMBEDDED_IDLE_RSS_MIB = 250;
const EMBEDDED_READY_MS = 5_000;

export function checkFloors({ poll, fanout, database, embedded }: Figures): Floor[] {
  const floors: Floor[] = [];
  const rps = (target: string) => poll.runs.find((r) => r.target === target && !r.notModified)?.requestsPerSecond ?? 0;
  const server = rps('server');
  const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);
  floors.push(floor('poll ≥ 0.9 × B0 requests/s', ratio(server, rps('b0')), 0.9, '≥', (v) => `${v.toFixed(2)} × B0`));
  floors.push(floor('poll with token ≥ 0.9 × poll without', ratio(rps('server-token'), server), 0.9, '≥', (v) => `${v.toFixed(2)} × poll without`));
  floors.push(floor('poll ≥ 1.0 × B1 requests/s', ratio(server, rps('b1')), 1.0, '≥', (v) => `${v.toFixed(2)} × B1`));

  const size = fanout.runs.some((r) => r.clients === FLOOR_CLIENTS) ? FLOOR_CLIENTS : Math.max(0, ...fanout.runs.map((r) => r.clients));
  const note = size === FLOOR_CLIENTS ? undefined : `measured at ${size} clients, the floor is stated at ${FLOOR_CLIENTS}`;
  const run = (target: string): FanoutRun | undefined => fanout.runs.find((r) => r.target === target && r.shape === 'a' && r.clients === size);
  const ours = run('server');
  const b3 = run('b3');
  const sio = run('socketio');
  if (ours && b3 && sio) {
    floors.push(withNote(floor('fan-out (a) p99 ≤ 100 ms', ours.latency.p99, 100, '≤', (v) => `${v} ms`), note));
    floors.push(withNote(floor('fan-out (a) p99 ≤ 1.5 × B3 p99', ratio(ours.latency.p99, Math.max(1, b3.latency.p99)), 1.5, '≤', (v) => `${v.toFixed(2)} × B3 (${ours.latency.p99} vs ${b3.latency.p99} ms)`), note));
    floors.push(withNote(floor('fan-out (a) lost latest states = 0', ours.lost, 0, '≤', (v) => `${v}`), note));
    const delivered = ratio(ours.deliveredPerSecond, sio.deliveredPerSecond);
    floors.push(
      withNote(
        floor('fan-out (a) delivered msgs/s ≥ 2 × Socket.IO', delivered, 2, '≥', (v) => `${v.toFixed(2)} × Socket.IO (${Math.round(ours.deliveredPerSecond)} vs ${Math.round(sio.deliveredPerSecond)}/s)`),
        note,
      ),
    );
  }
  const shared = (target: string): FanoutRun | undefined => fanout.runs.find((r) => r.target === target && r.shape === 'c' && r.clients === size);
  const oursC = shared('server');
  const b3C = shared('b3');
  if (oursC && b3C) {
    floors.push(withNote(floor('fan-out (c) p99 ≤ 50 ms', oursC.latency.p99, 50, '≤', (v) => `${v} ms`), note));
    floors.push(withNote(floor('fan-out (c) p99 ≤ 1.5 × B3 p99', ratio(oursC.latency.p99, Math.max(1, b3C.latency.p99)), 1.5, '≤', (v) => `${v.toFixed(2)} × B3 (${oursC.latency.p99} vs ${b3C.latency.p99} ms)`), note));
    floors.push(withNote(floor('fan-out (c) lost latest states = 0', oursC.lost, 0, '≤', (v) => `${v}`), note));
  }
  const memory = (target: string) => fanout.memory.find((m) => m.target === target && m.clients === size);
  const ourMemory = memory('server');
  const b3Memory = memory('b3');
  if (ourMemory && b3Memory) {
    const kib = ourMemory.rssPerConnection / KIB;
    floors.push(withNote(floor('memory per idle SSE connection ≤ 2 × B3 (RSS)', ratio(ourMemory.rssPerConnection, b3Memory.rssPerConnection), 2, '≤', (v) => `${v.toFixed(2)} × B3 (${kib.toFixed(1)} vs ${(b3Memory.rssPerConnection / KIB).toFixed(1)} KiB)`), note));
    floors.push(withNote(floor('memory per idle SSE connection ≤ 20 KiB (RSS)', kib, 20, '≤', (v) => `${v.toFixed(1)} KiB`), note));
  }
  const allowed = Math.ceil(database.books / 1000);
  floors.push(floor(`database ≤ ${allowed} upsert per interval per 1,000 changed books`, database.upsertsPerRound, allowed, '≤', (v) => `${v.toFixed(2)} per interval`));
  // Reads of the books table: what the poll path's database fallback would send. The server's
  // other statements meanwhile are the generation queue's (claims, lease renewals), off the path.
  floors.push(floor('database reads on the poll path = 0', poll.database.bookReads, 0, '≤', (v) => `${v} reads of books`));
  for (const start of embedded.starts) {
    floors.push(floor(`embedded idle RSS ≤ ${EMBEDDED_IDLE_RSS_MIB} MiB (${start.phase})`, start.idleRss / KIB / KIB, EMBEDDED_IDLE_RSS_MIB, '≤', (v) => `${v.toFixed(0)} MiB`));
    floors.push(floor(`embedded start-up to /healthz ≤ ${EMBEDDED_READY_MS / 1000} s (${start.phase})`, start.readyMs, EMBEDDED_READY_MS, '≤', (v) => `${(v / 1000).toFixed(2)} s`));
  }
  return floors;
}

function floor(name: string, value: number, limit: number, op: '≤' | '≥', show: (v: number) => string): Floor {
  const pass = op === '≤' ? value <= limit : value >= limit;
  return { name, measured: show(value), limit: `${op} ${limit}`, pass };
}

function withNote(f: Floor, note: string | undefined): Floor {
  return note ? { ...f, note } : f;
}
