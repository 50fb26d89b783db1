import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { STEPS } from '../../src/progress/schema.js';
import type { BookProgress } from '../../src/progress/schema.js';
import { startService } from '../../src/service.js';
import type { Service } from '../../src/service.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { Watch } from '../support/events.js';
import { silentLog, testConfig } from '../support/service.js';
import { Gate, ScriptedGenerator, expectedChapters } from './generators.js';

const STEP_MS = 15;

let database: TestDatabase;
let service: Service;
let planning: Gate;
const watches: Watch[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  planning = new Gate('the planning step');
  const generator = new ScriptedGenerator(STEP_MS, { gates: { PLANNING: planning } });
  service = await startService(testConfig({ DATABASE_URL: database.url, SNAPSHOT_INTERVAL_MS: '300' }), silentLog, { generator });
});

afterEach(() => {
  for (const watch of watches.splice(0)) watch.close();
});

afterAll(async () => {
  planning?.open();
  await service?.close();
  await database?.drop();
});

interface BookView {
  bookId: string;
  title: string;
  status: string;
  generationStep: string;
  progress: BookProgress | null;
  chapters?: Array<{ number: number; title: string; content: string }>;
}

function postBook(body: unknown): Promise<Response> {
  return fetch(`${service.url}/api/books`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('a demo generation watched over SSE', () => {
  it('runs from PLANNING to COMPLETE in pipeline order, never going back, and stores every chapter', async () => {
    const res = await postBook({ title: 'The Watched Book', chapters: 3, sectionsPerChapter: 2 });
    expect(res.status).toBe(201);
    const created = (await res.json()) as { success: true; data: { bookId: string; title: string; chapters: number; status: string } };
    expect(created).toMatchObject({ success: true, data: { title: 'The Watched Book', chapters: 3, sectionsPerChapter: 2, status: 'PLANNING' } });
    const { bookId } = created.data;
    expect(res.headers.get('location')).toBe(`/api/books/${bookId}`);

    const watch = new Watch(`${service.url}/api/ai/progress/${bookId}/stream`);
    watches.push(watch);
    // The run waits in its planning step until the watcher has its first state: it sees the whole run.
    await planning.arrival();
    const first = await watch.next(() => true, 5_000, 'the first state');
    expect(first).toMatchObject({ status: 'PLANNING', generationStep: 'PLANNING', version: 1, overallProgress: 0 });
    planning.open();

    const done = await watch.next((s) => s.status === 'COMPLETE', 15_000, 'COMPLETE');
    expect(done).toMatchObject({ generationStep: 'COMPLETE', overallProgress: 100, currentChapter: 3, totalChapters: 3 });
    expect(watch.last).toEqual(done);

    const { states } = watch;
    expect(states.every((s) => s.bookId === bookId && s.status !== 'ERROR')).toBe(true);
    expect(watch.ids).toEqual(states.map((s) => String(s.version)));
    for (let i = 1; i < states.length; i++) {
      const [before, after] = [states[i - 1]!, states[i]!];
      expect(after.version, `version after ${before.version}`).toBeGreaterThan(before.version);
      expect(after.overallProgress, `progress at version ${after.version}`).toBeGreaterThanOrEqual(before.overallProgress);
      expect(STEPS.indexOf(after.generationStep), `step at version ${after.version}`).toBeGreaterThanOrEqual(STEPS.indexOf(before.generationStep));
    }
    const steps = new Set(states.map((s) => s.generationStep));
    for (const step of ['PLANNING', 'CHAPTERS', 'COMPLETE'] as const) expect(steps).toContain(step);
    expect(states.filter((s) => s.generationStep === 'CHAPTERS').length).toBeGreaterThanOrEqual(3);

    const list = await fetch(`${service.url}/api/books`);
    expect(list.status).toBe(200);
    const listed = ((await list.json()) as { success: true; data: BookView[] }).data.find((b) => b.bookId === bookId);
    expect(listed).toMatchObject({ title: 'The Watched Book', status: 'COMPLETE', generationStep: 'COMPLETE' });

    const one = await fetch(`${service.url}/api/books/${bookId}`);
    expect(one.status).toBe(200);
    const book = ((await one.json()) as { success: true; data: BookView }).data;
    expect(book).toMatchObject({ bookId, title: 'The Watched Book', status: 'COMPLETE' });
    expect(book.progress).toEqual(done);
    // Exactly the text the (deterministic) demo generator writes for this book, every section of every chapter.
    const spec = { bookId, title: 'The Watched Book', chapters: 3, sectionsPerChapter: 2 };
    const expected = await expectedChapters(spec);
    expect(book.chapters?.map(({ number, title, content }) => ({ number, title, content }))).toEqual(expected);

    // The terminal state is already in Postgres, without waiting for a snapshot round.
    expect(await service.store.getProgress(bookId)).toEqual(done);
  });

  it('has its first state readable by a poll as soon as POST /api/books answers', async () => {
    const res = await postBook({ title: 'Polled at once', chapters: 2, sectionsPerChapter: 1 });
    expect(res.status).toBe(201);
    const { bookId } = ((await res.json()) as { data: { bookId: string } }).data;
    const poll = await fetch(`${service.url}/api/ai/progress/${bookId}`);
    expect(poll.status).toBe(200);
    const state = ((await poll.json()) as { data: BookProgress }).data;
    expect(state).toMatchObject({ bookId, totalChapters: 2 });
    expect(state.version).toBeGreaterThanOrEqual(1);
    planning.open();
    await service.orchestrator.settled(bookId);
  });

  it('GET /api/books/:id is a 404 JSON error for an unknown book', async () => {
    const res = await fetch(`${service.url}/api/books/bk_unknown`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ success: false, error: { code: 'not_found', message: expect.stringContaining('bk_unknown') } });
  });
});

describe('POST /api/books with bad input', () => {
  it.each([
    ['a missing title', { chapters: 3 }, 'invalid_book', /title/],
    ['a blank title', { title: '   ' }, 'invalid_book', /title/],
    ['0 chapters', { title: 'Zero', chapters: 0 }, 'invalid_book', /chapters/],
    ['51 chapters', { title: 'Too many', chapters: 51 }, 'invalid_book', /chapters/],
    ['an unknown field', { title: 'Typo', chapter: 3 }, 'invalid_book', /chapter/],
    ['invalid JSON', '{"title": "broken"', 'invalid_json', /JSON/],
  ])('answers 400 with the error shape for %s, and starts nothing', async (_what, body, code, message) => {
    const before = (await service.books.listBooks()).length;
    const res = await postBook(body);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const json = (await res.json()) as { success: false; error: { code: string; message: string } };
    expect(json).toEqual({ success: false, error: { code, message: expect.stringMatching(message) } });
    expect(service.orchestrator.running).toBe(0);
    expect((await service.books.listBooks()).length).toBe(before);
  });
});
