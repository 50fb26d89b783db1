import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BookSpec, ChapterPlan, Generator, PreparationStep } from '../../src/orchestrator/generator.js';
import type { TextEvent, TextSink } from '../../src/orchestrator/section-text.js';
import { FencedError } from '../../src/progress/tracker.js';
import { startService } from '../../src/service.js';
import type { Service } from '../../src/service.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { createBook } from '../support/books.js';
import { silentLog, testConfig } from '../support/service.js';
import { until, watchForAbsence, withTimeout } from '../support/wait.js';

/** The chunks of each section; a section's first call fails after its second chunk when the title asks for it. */
function chunksOf(chapter: number, section: number): string[] {
  return [`C${chapter}S${section} `, 'alpha ', 'beta ', 'gamma.'];
}

/**
 * A generator with no pace and no AI service: known chunks per section, a call cut part-way
 * for books titled "cut …", and a count of the chunks taken from it so far.
 */
class ChunkGenerator implements Generator {
  calls = 0;
  pulled = 0;
  readonly #failed = new Set<string>();

  async prepare(_step: PreparationStep, _book: BookSpec): Promise<void> {}

  async outline(book: BookSpec): Promise<ChapterPlan[]> {
    return Array.from({ length: book.chapters }, (_, i) => ({ number: i + 1, title: `Chapter ${i + 1}` }));
  }

  async *writeSection(book: BookSpec, chapter: ChapterPlan, section: number): AsyncIterable<string> {
    this.calls++;
    const key = `${book.bookId}/${chapter.number}/${section}`;
    const cut = book.title.startsWith('cut') && !this.#failed.has(key);
    for (const [index, chunk] of chunksOf(chapter.number, section).entries()) {
      if (cut && index === 2) {
        this.#failed.add(key);
        throw new Error('the stream was cut');
      }
      this.pulled++;
      yield chunk;
    }
  }
}

let database: TestDatabase;
let service: Service;
const generator = new ChunkGenerator();
/** What the pipeline passes to the sink; each test sets how the sink answers. */
let sink: TextSink = () => {};

beforeAll(async () => {
  database = await createTestDatabase();
  const config = testConfig({ DATABASE_URL: database.url, DEMO_STEP_MS: '0', GENERATOR_RETRIES: '3' });
  service = await startService(config, silentLog, { generator, onText: (event) => sink(event) });
});

afterAll(async () => {
  await service?.close();
  await database?.drop();
});

function run(bookId: string): Promise<string> {
  const settled = service.orchestrator.settled(bookId);
  expect(settled, 'the run of a book started here').toBeDefined();
  return withTimeout(settled!, 15_000, `the run of ${bookId}`);
}

/** The sink's events of one book as short strings: `1.2 text` for a chunk, `1.2 RESET` for a reset. */
function shown(events: TextEvent[], bookId: string): string[] {
  return events.filter((e) => e.bookId === bookId).map((e) => `${e.chapter}.${e.section} ${e.type === 'reset' ? 'RESET' : e.text}`);
}

function allChunks(chapters: number, sections: number): string[] {
  const out: string[] = [];
  for (let c = 1; c <= chapters; c++) for (let s = 1; s <= sections; s++) out.push(...chunksOf(c, s).map((t) => `${c}.${s} ${t}`));
  return out;
}

describe('the pipeline passes live text to the TextSink', () => {
  it('forwards every chunk of every section, in order', async () => {
    const events: TextEvent[] = [];
    sink = (event) => void events.push(event);
    const book = await createBook(service.url, 'in order', 2, 2);
    expect(await run(book.bookId)).toBe('COMPLETE');
    expect(shown(events, book.bookId)).toEqual(allChunks(2, 2));
  });

  it('resets a section whose call failed part-way, then forwards the retried call from its start', async () => {
    const events: TextEvent[] = [];
    sink = (event) => void events.push(event);
    const book = await createBook(service.url, 'cut streams', 1, 2);
    expect(await run(book.bookId)).toBe('COMPLETE');
    const [first, second] = [chunksOf(1, 1), chunksOf(1, 2)];
    expect(shown(events, book.bookId)).toEqual([
      `1.1 ${first[0]}`,
      `1.1 ${first[1]}`,
      '1.1 RESET',
      ...first.map((t) => `1.1 ${t}`),
      `1.2 ${second[0]}`,
      `1.2 ${second[1]}`,
      '1.2 RESET',
      ...second.map((t) => `1.2 ${t}`),
    ]);
  });

  it('waits for each write of the sink before taking the next chunk from the generator', async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const events: TextEvent[] = [];
    sink = async (event) => {
      events.push(event);
      if (events.length === 1) await held;
    };
    const before = generator.pulled;
    const book = await createBook(service.url, 'a slow sink', 1, 1);
    await until(() => events.length === 1, 10_000, 'the first chunk to reach the sink');
    await watchForAbsence(100);
    expect(generator.pulled - before).toBe(1);
    expect(events).toHaveLength(1);
    release();
    expect(await run(book.bookId)).toBe('COMPLETE');
    expect(shown(events, book.bookId)).toEqual(allChunks(1, 1));
  });

  it('sends a section again from a reset after a write of the sink failed, so readers see no gap', async () => {
    const events: TextEvent[] = [];
    sink = (event) => {
      events.push(event);
      if (events.length === 2) throw new Error('the text log is unreachable');
    };
    const book = await createBook(service.url, 'a failing sink', 1, 1);
    expect(await run(book.bookId)).toBe('COMPLETE');
    const [a, b, c, d] = chunksOf(1, 1);
    // The failed write of b is followed by a reset and everything so far in one chunk.
    expect(shown(events, book.bookId)).toEqual([`1.1 ${a}`, `1.1 ${b}`, '1.1 RESET', `1.1 ${a}${b}${c}`, `1.1 ${d}`]);
  });

  it('stops the run without retrying the call when the sink refuses a write as fenced (the run was taken over)', async () => {
    const events: TextEvent[] = [];
    sink = (event) => {
      events.push(event);
      throw new FencedError('run 1 was superseded');
    };
    const calls = generator.calls;
    const book = await createBook(service.url, 'a fenced sink', 1, 1);
    expect(await run(book.bookId)).toBe('ABORTED');
    expect(generator.calls - calls).toBe(1);
    expect(shown(events, book.bookId)).toEqual([`1.1 ${chunksOf(1, 1)[0]}`]);
  });
});
