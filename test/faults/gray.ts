import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { expect } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { BookProgress } from '../../src/progress/schema.js';
import { startService } from '../../src/service.js';
import type { Service } from '../../src/service.js';
import { uniquePrefix } from '../support/backends.js';
import { withTimeout } from '../support/wait.js';

/** A logger whose JSON lines the test reads: what an operator would see during the fault. */
export function capturedLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  return { log, lines };
}

/** A real server with `env` (REDIS_URL and DATABASE_URL among it) logging to `log`. */
export function startLogged(env: Record<string, string>, log: Logger): Promise<Service> {
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    REDIS_KEY_PREFIX: uniquePrefix(),
    DATA_DIR: mkdtempSync(join(tmpdir(), 'booksai-gray-')),
    DEMO_STEP_MS: '20',
    DEMO_TOKENS_PER_SECOND: '1000000000',
    // It shares its event loop with the test runner: the runner's own stalls are not overload.
    OVERLOAD_LOOP_DELAY_MS: '0',
    ...env,
  });
  return startService(config, log);
}

export interface Answer {
  status: number;
  ms: number;
  code?: string;
  source?: string | null;
  retryAfter?: string | null;
}

/** What each kind of request answered, and how long it took. */
export type Answers = Record<'pollFollowed' | 'pollOther' | 'publishExisting' | 'publishNew' | 'startBook' | 'listBooks' | 'stream' | 'healthz', Answer>;

/** How long any request may take during a fault (the bound, with BACKEND_TIMEOUT_MS at its default). */
export const ANSWER_BOUND_MS = 3_000;

async function timed(request: () => Promise<Response>): Promise<Answer> {
  const started = performance.now();
  const res = await withTimeout(request(), 10_000, 'an answer');
  const ms = performance.now() - started;
  const answer: Answer = { status: res.status, ms, source: res.headers.get('x-progress-source'), retryAfter: res.headers.get('retry-after') };
  if (res.headers.get('content-type')?.startsWith('text/event-stream')) {
    await res.body?.cancel();
  } else {
    const text = await res.text();
    if (res.status >= 400) answer.code = (JSON.parse(text) as { error: { code: string } }).error.code;
  }
  return answer;
}

const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/**
 * Sends every kind of request at once: a poll of a book this process follows and of one it
 * does not (`other`, never polled before), a publish to an existing and to a new book, starting
 * a book, listing books, opening a stream, /healthz. Each is timed on its own.
 */
export async function askEverything(url: string, books: { followed: string; other: string }): Promise<Answers> {
  const controller = new AbortController();
  const newBook = `new-${Math.random().toString(36).slice(2, 10)}`;
  try {
    const [pollFollowed, pollOther, publishExisting, publishNew, startBook, listBooks, stream, healthz] = await Promise.all([
      timed(() => fetch(`${url}/api/ai/progress/${books.followed}`)),
      timed(() => fetch(`${url}/api/ai/progress/${books.other}`)),
      timed(() => fetch(`${url}/api/ai/progress/${books.followed}`, json({ message: 'during the fault' }))),
      timed(() => fetch(`${url}/api/ai/progress/${newBook}`, json({ status: 'GENERATING', generationStep: 'RESEARCH' }))),
      timed(() => fetch(`${url}/api/books`, json({ title: 'Started during a fault', chapters: 1, sectionsPerChapter: 1 }))),
      timed(() => fetch(`${url}/api/books`)),
      timed(() => fetch(`${url}/api/ai/progress/${books.other}/stream`, { signal: controller.signal })),
      timed(() => fetch(`${url}/healthz`)),
    ]);
    return { pollFollowed, pollOther, publishExisting, publishNew, startBook, listBooks, stream, healthz };
  } finally {
    controller.abort();
  }
}

/** Every answer came within the bound; none was a 5xx other than a 503 with Retry-After. */
export function expectBounded(answers: Answers): void {
  for (const [what, answer] of Object.entries(answers)) {
    expect(answer.ms, `${what} took ${Math.round(answer.ms)} ms`).toBeLessThan(ANSWER_BOUND_MS);
    if (answer.status >= 500) {
      expect(answer.status, `${what}: ${JSON.stringify(answer)}`).toBe(503);
      expect(answer.retryAfter, `${what} has Retry-After`).toMatch(/^\d+$/);
    }
  }
}

/** Lines no outage may produce, and how many lines each fault kind wrote. */
export function logSummary(lines: string[]): { unhandled: string[]; perKind: Map<string, number> } {
  const unhandled = lines.filter((line) => /unhandled (error|rejection)/.test(line));
  const perKind = new Map<string, number>();
  for (const line of lines) {
    const kind = (JSON.parse(line) as { fault?: string }).fault;
    if (kind) perKind.set(kind, (perKind.get(kind) ?? 0) + 1);
  }
  return { unhandled, perKind };
}

/** Publishes over HTTP and returns the state, or null for a non-200. */
export async function tryPublish(url: string, bookId: string, body: unknown): Promise<BookProgress | null> {
  const res = await fetch(`${url}/api/ai/progress/${bookId}`, json(body));
  if (res.status !== 200) {
    await res.body?.cancel();
    return null;
  }
  return ((await res.json()) as { data: BookProgress }).data;
}
