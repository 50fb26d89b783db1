import { setTimeout as delay } from 'node:timers/promises';
import type { Cluster, Redis } from 'ioredis';
import type postgres from 'postgres';
import { COMMIT } from '../src/broker/scripts.js';
import type { Answer, HistoryWriter, Seen } from './history.js';
import { TERMINAL } from './history.js';
import type { Prng } from './prng.js';
import type { Instance, Topology } from './topology.js';

/** The books of the campaign and who created them; watchers join each as it appears. */
export class Books {
  readonly all = new Map<string, { source: 'demo' | 'http' | 'worker'; chapters?: number; sectionsPerChapter?: number; title?: string }>();
  readonly #listeners: Array<(bookId: string) => void> = [];

  constructor(readonly history: HistoryWriter) {}

  add(bookId: string, book: { source: 'demo' | 'http' | 'worker'; chapters?: number; sectionsPerChapter?: number; title?: string }): void {
    if (this.all.has(bookId)) return;
    this.all.set(bookId, book);
    this.history.record({ type: 'book', bookId, ...book });
    for (const listener of this.#listeners) listener(bookId);
  }

  onBook(listener: (bookId: string) => void): void {
    this.#listeners.push(listener);
  }
}

export const seen = (state: { version: number; status: string; message?: string }): Seen => ({ version: state.version, status: state.status, message: state.message ?? '' });

/**
 * One HTTP request, timed, with a client deadline well past the server's bound (so that a slow
 * answer is measured, not cut short). A network error or the deadline is `status: null`.
 */
export async function timed(instance: Instance, path: string, init: RequestInit, clientMs: number): Promise<{ answer: Answer; body: unknown }> {
  const started = performance.now();
  try {
    const res = await fetchOnce(`${instance.url}${path}`, { ...init, signal: AbortSignal.timeout(clientMs) });
    const text = await res.text();
    const answer: Answer = { server: instance.index, status: res.status, ms: Math.round(performance.now() - started), retryAfter: res.headers.get('retry-after') };
    let body: unknown = null;
    try {
      body = text === '' ? null : JSON.parse(text);
    } catch {
      body = text;
    }
    return { answer, body };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return { answer: { server: instance.index, status: null, ms: Math.round(performance.now() - started), error: cause ?? (error as Error).name }, body: null };
  }
}

/**
 * fetch, with a GET retried once at once when its kept-alive connection was reset before any
 * answer, as browsers do: the server closing an idle connection as the client reuses it is a
 * race of HTTP keep-alive, not a lost answer.
 */
async function fetchOnce(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (error) {
    const code = (error as { cause?: { code?: string } }).cause?.code;
    if ((init.method ?? 'GET') !== 'GET' || (code !== 'ECONNRESET' && code !== 'UND_ERR_SOCKET')) throw error;
    return fetch(url, init);
  }
}

const post = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

export interface LoadOptions {
  topology: Topology;
  history: HistoryWriter;
  books: Books;
  prng: Prng;
  /** Aborted when the load phase ends: publishers finish their books, nobody starts a new one. */
  stop: AbortSignal;
  clientMs: number;
}

/** The update of step `step` of `steps` (the last one completes the book). */
function update(step: number, steps: number): Record<string, unknown> {
  if (step === steps) return { status: 'COMPLETE', generationStep: 'COMPLETE', currentChapter: steps, totalChapters: steps, message: `step ${step} of ${steps}` };
  return { status: 'GENERATING', generationStep: 'CHAPTERS', currentChapter: step, totalChapters: steps, message: `step ${step} of ${steps}` };
}

/**
 * A publisher over HTTP: books of 8-20 updates, one after the other, each update to a server
 * drawn at random, retried (on another server) until acknowledged. Once `stop` fires, the book
 * in progress jumps to its last update.
 */
export async function httpPublisher(o: LoadOptions, lane: number): Promise<void> {
  for (let n = 0; !o.stop.aborted; n++) {
    const bookId = `http-${lane}-${n}`;
    const steps = o.prng.int(8, 20);
    for (let step = 1; step <= steps; step++) {
      if (o.stop.aborted) step = steps;
      for (;;) {
        const instance = o.prng.pick(o.topology.instances);
        const { answer, body } = await timed(instance, `/api/ai/progress/${bookId}`, post(update(step, steps)), o.clientMs);
        const data = (body as { data?: { version: number; status: string; message: string } } | null)?.data;
        o.history.record({ type: 'publish', via: 'http', bookId, ...answer, ...(answer.status === 200 && data ? { state: seen(data) } : {}) });
        if (answer.status === 200) break;
        await delay(200);
      }
      if (step === 1) o.books.add(bookId, { source: 'http' });
      await delay(o.prng.int(100, 400));
    }
  }
}

/**
 * A worker outside the server, writing straight to Redis as docs/protocol.md says: read the
 * held state, merge, next version (from Postgres, or its own last, when the key is missing),
 * commit with the script; on a conflict read again.
 */
export class OutsideWorker {
  readonly #o: LoadOptions;
  readonly #redis: Redis | Cluster;
  readonly #sql: postgres.Sql;
  readonly #written = new Map<string, number>();

  constructor(o: LoadOptions) {
    this.#o = o;
    this.#redis = o.topology.redisClient();
    this.#sql = o.topology.sql();
  }

  async run(lane: number): Promise<void> {
    const o = this.#o;
    for (let n = 0; !o.stop.aborted; n++) {
      const bookId = `worker-${lane}-${n}`;
      const steps = o.prng.int(8, 20);
      for (let step = 1; step <= steps; step++) {
        if (o.stop.aborted) step = steps;
        while (!(await this.#publish(bookId, update(step, steps), steps))) await delay(300);
        if (step === 1) o.books.add(bookId, { source: 'worker' });
        await delay(o.prng.int(100, 400));
      }
    }
  }

  async #publish(bookId: string, fields: Record<string, unknown>, steps: number): Promise<boolean> {
    const key = this.#o.topology.keys.state(bookId);
    const started = performance.now();
    const record = (status: number | null, state?: Seen, error?: string) =>
      this.#o.history.record({ type: 'publish', via: 'redis', bookId, status, ms: Math.round(performance.now() - started), ...(state ? { state } : {}), ...(error ? { error } : {}) });
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        const raw = await this.#redis.get(key);
        const held = raw ? (JSON.parse(raw) as Record<string, unknown> & { version: number }) : null;
        const base = held ? held.version : Math.max(await this.#versionInPostgres(bookId), this.#written.get(bookId) ?? 0);
        const { version: _, ...rest } = held ?? { version: 0 };
        const progress = fields.status === 'COMPLETE' ? 100 : Math.round((Number(fields.currentChapter) / steps) * 90);
        const state: Record<string, unknown> & { version: number } = {
          status: 'PLANNING', generationStep: 'PLANNING', currentSection: 0, totalSections: 0, ...rest,
          ...fields, overallProgress: progress, bookId, timestamp: Date.now(), version: base + 1,
        };
        const json = JSON.stringify(state);
        const call = this.#o.topology.commitCall(bookId, held ? String(held.version) : '', json, 86_400);
        const result = await this.#redis.eval(COMMIT, call.keys.length, ...call.keys, ...call.args);
        if (result === 1) {
          this.#written.set(bookId, state.version);
          record(200, seen({ version: state.version, status: String(state.status), message: String(state.message ?? '') }));
          return true;
        }
      }
      record(409, undefined, 'the held version kept changing');
      return false;
    } catch (error) {
      record(null, undefined, (error as Error).message.slice(0, 200));
      return false;
    }
  }

  async #versionInPostgres(bookId: string): Promise<number> {
    const rows = await this.#sql<Array<{ version: number }>>`select version from books where id = ${bookId}`;
    return rows[0]?.version ?? 0;
  }

  async close(): Promise<void> {
    this.#redis.disconnect();
    await this.#sql.end({ timeout: 1 });
  }
}

/** Demo books started through POST /api/books every few seconds, generated by the servers' orchestrators. */
export async function demoBooks(o: LoadOptions): Promise<void> {
  for (let n = 0; !o.stop.aborted; n++) {
    const spec = { title: `Chaos book ${n}`, chapters: o.prng.int(2, 3), sectionsPerChapter: 2 };
    const instance = o.prng.pick(o.topology.instances);
    const { answer, body } = await timed(instance, '/api/books', post(spec), o.clientMs);
    const bookId = (body as { data?: { bookId: string } } | null)?.data?.bookId;
    o.history.record({ type: 'create', ...answer, ...(bookId ? { bookId } : {}) });
    if (answer.status === 201 && bookId) o.books.add(bookId, { source: 'demo', ...spec });
    await delay(o.prng.int(2_000, 6_000), undefined, { signal: o.stop }).catch(() => undefined);
  }
}

/** Whether a state ends its run. */
export const isTerminal = (s: Seen | undefined): boolean => s !== undefined && TERMINAL.has(s.status);
