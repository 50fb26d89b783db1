import { setTimeout as delay } from 'node:timers/promises';
import { expectedChapters } from '../test/orchestrator/generators.js';
import type { FinalChapter, HistoryWriter, Seen } from './history.js';
import { TERMINAL } from './history.js';
import type { Books } from './load.js';
import type { Topology } from './topology.js';
import type { Watcher } from './watchers.js';

interface Held {
  redis: Seen | null;
  postgres: Seen | null;
}

const same = (a: Seen | null | undefined, b: Seen | null | undefined) => !!a && !!b && a.version === b.version && a.status === b.status && a.message === b.message;

/** Each book's state as Redis and Postgres hold it now, read directly. */
async function heldStates(topology: Topology, bookIds: readonly string[]): Promise<Map<string, Held>> {
  const redis = topology.redisClient();
  const sql = topology.sql();
  try {
    const rows = await sql<Array<{ id: string; version: number; status: string; message: string | null }>>`
      select id, version, status, progress->>'message' as message from books where id = any(${[...bookIds]}::text[])`;
    const postgres = new Map(rows.map((r) => [r.id, { version: r.version, status: r.status, message: r.message ?? '' }]));
    const held = new Map<string, Held>();
    for (const id of bookIds) {
      const raw = await redis.get(topology.keys.state(id));
      const state = raw ? (JSON.parse(raw) as { version: number; status: string; message?: string }) : null;
      held.set(id, { redis: state ? { version: state.version, status: state.status, message: state.message ?? '' } : null, postgres: postgres.get(id) ?? null });
    }
    return held;
  } finally {
    redis.disconnect();
    await sql.end({ timeout: 1 });
  }
}

/**
 * Waits (at most `ms`) until the system settled: every demo book ended, Redis and Postgres
 * agree on each book, and every watcher holds each book's state. Returns how long it took;
 * what did not settle is left for the checker to report.
 */
export async function settle(topology: Topology, books: Books, watchers: readonly Watcher[], ms: number): Promise<number> {
  const started = performance.now();
  const ids = [...books.all.keys()];
  while (performance.now() - started < ms) {
    const held = await heldStates(topology, ids).catch(() => null);
    const settled =
      held !== null &&
      ids.every((id) => {
        const { redis, postgres } = held.get(id)!;
        const ref = redis ?? postgres;
        if (!ref || !postgres || (redis && !same(redis, postgres))) return false;
        if (books.all.get(id)!.source === 'demo' && !TERMINAL.has(ref.status)) return false;
        return watchers.every((w) => !w.books.includes(id) || (w.connected() && same(w.last.get(id), ref)));
      });
    if (settled) break;
    await delay(500);
  }
  return Math.round(performance.now() - started);
}

/** Records what each book ends on (Redis, Postgres, a demo book's chapters) and what each watcher ends on. */
export async function recordFinal(topology: Topology, books: Books, watchers: readonly Watcher[], history: HistoryWriter): Promise<void> {
  const ids = [...books.all.keys()];
  const held = await heldStates(topology, ids);
  const sql = topology.sql();
  try {
    for (const id of ids) {
      const book = books.all.get(id)!;
      const { redis, postgres } = held.get(id)!;
      if (book.source !== 'demo') {
        history.record({ type: 'final', bookId: id, redis, postgres });
        continue;
      }
      const spec = { bookId: id, title: book.title!, chapters: book.chapters!, sectionsPerChapter: book.sectionsPerChapter! };
      const expected = await expectedChapters(spec);
      const rows = await sql<Array<{ number: number; title: string; content: string; created_at: Date; updated_at: Date }>>`
        select number, title, content, created_at, updated_at from chapters where book_id = ${id} order by number`;
      const chapters: FinalChapter[] = rows.map((r) => {
        const want = expected.find((e) => e.number === r.number);
        return { number: r.number, matches: !!want && want.title === r.title && want.content === r.content, rewritten: r.updated_at.getTime() !== r.created_at.getTime() };
      });
      history.record({ type: 'final', bookId: id, redis, postgres, chapters, expectedChapters: spec.chapters });
    }
  } finally {
    await sql.end({ timeout: 1 });
  }
  for (const w of watchers) history.record({ type: 'final-watcher', watcher: w.name, connected: w.connected(), last: Object.fromEntries(w.last) });
}
