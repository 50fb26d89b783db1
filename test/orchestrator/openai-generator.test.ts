import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AiServiceError, retryAfterMs } from '../../src/orchestrator/ai-errors.js';
import { GenerationError } from '../../src/orchestrator/generator.js';
import type { BookSpec, ChapterPlan } from '../../src/orchestrator/generator.js';
import { GeneratorMetrics } from '../../src/orchestrator/generator-metrics.js';
import { OpenAIGenerator } from '../../src/orchestrator/openai-generator.js';
import { retryGeneration } from '../../src/orchestrator/retry.js';
import type { TextEvent } from '../../src/orchestrator/section-text.js';
import { startService } from '../../src/service.js';
import type { Service } from '../../src/service.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { chapterRows, createBook } from '../support/books.js';
import { FakeOpenAI, answerFor, sectionChunks } from '../support/fake-openai.js';
import { silentLog, testConfig } from '../support/service.js';
import { withTimeout } from '../support/wait.js';

const BOOK: BookSpec = { bookId: 'bk_fake', title: 'A Book of Fakes', chapters: 2, sectionsPerChapter: 1 };
const CHAPTER: ChapterPlan = { number: 1, title: 'The First Fake' };
/** Node's timers may fire up to a millisecond before performance.now() says they are due. */
const TIMER_SLACK_MS = 2;

let fake: FakeOpenAI;

function generator(options: { metrics?: GeneratorMetrics; timeoutMs?: number } = {}): OpenAIGenerator {
  return new OpenAIGenerator({ baseUrl: fake.baseUrl, apiKey: 'sk-test', model: 'fake-model', timeoutMs: options.timeoutMs ?? 10_000, ...options });
}

async function collect(chunks: AsyncIterable<string>, into: string[] = []): Promise<string> {
  for await (const chunk of chunks) into.push(chunk);
  return into.join('');
}

function write(gen: OpenAIGenerator, signal = new AbortController().signal): AsyncIterable<string> {
  return gen.writeSection(BOOK, CHAPTER, 1, signal);
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

async function tokens(metrics: GeneratorMetrics): Promise<Record<string, number>> {
  const { values } = await metrics.tokens.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.kind), v.value]));
}

describe('the OpenAI-compatible generator against a local wire-format server', () => {
  beforeEach(async () => {
    fake = await FakeOpenAI.start();
  });
  afterEach(async () => {
    await fake.close();
  });

  it('passes on each chunk as the service sends it, before the answer ends', async () => {
    const held = deferred();
    fake.script({ kind: 'stream', chunks: ['It ', 'was ', 'a dark night.'], before: (i) => (i === 2 ? held.promise : Promise.resolve()) });
    const chunks = write(generator())[Symbol.asyncIterator]();
    expect(await withTimeout(chunks.next(), 5_000, 'the first chunk')).toEqual({ done: false, value: 'It ' });
    expect(await withTimeout(chunks.next(), 5_000, 'the second chunk')).toEqual({ done: false, value: 'was ' });
    // The service has not sent the rest: the chunks came while the answer was under way.
    expect(fake.requests[0]?.repliedAt).toBeUndefined();
    held.resolve();
    expect(await chunks.next()).toEqual({ done: false, value: 'a dark night.' });
    expect(await chunks.next()).toEqual({ done: true, value: undefined });

    const [request] = fake.requests;
    expect(request?.authorization).toBe('Bearer sk-test');
    expect(request?.body).toMatchObject({ model: 'fake-model', stream: true, stream_options: { include_usage: true } });
    expect(request?.body.messages.at(-1)?.content).toContain('section 1 of 1 of chapter 1, "The First Fake"');
  });

  it('counts the tokens each call reports, by kind, and nothing for a call cut before its usage', async () => {
    const metrics = new GeneratorMetrics();
    expect(await tokens(metrics)).toEqual({ prompt: 0, completion: 0 });
    fake.script(
      { kind: 'stream', chunks: ['One.'], usage: { prompt_tokens: 12, completion_tokens: 3 } },
      { kind: 'stream', chunks: ['Two.'], usage: { prompt_tokens: 20, completion_tokens: 5 } },
      { kind: 'drop', chunks: ['Thr'] },
    );
    const gen = generator({ metrics });
    expect(await collect(write(gen))).toBe('One.');
    expect(await tokens(metrics)).toEqual({ prompt: 12, completion: 3 });
    expect(await collect(write(gen))).toBe('Two.');
    expect(await tokens(metrics)).toEqual({ prompt: 32, completion: 8 });
    await expect(collect(write(gen))).rejects.toBeInstanceOf(AiServiceError);
    expect(await tokens(metrics)).toEqual({ prompt: 32, completion: 8 });
  });

  it('plans the outline from the titles the model lists', async () => {
    const outline = await generator().outline({ ...BOOK, chapters: 3 });
    expect(outline).toEqual([
      { number: 1, title: 'Fake Chapter 1' },
      { number: 2, title: 'Fake Chapter 2' },
      { number: 3, title: 'Fake Chapter 3' },
    ]);
  });

  it.each([429, 500, 503])('retries a %i no sooner than its Retry-After', async (status) => {
    fake.script({ kind: 'status', status, retryAfter: '1' }, { kind: 'stream', chunks: ['After ', 'the wait.'] });
    const gen = generator();
    const text = await retryGeneration(() => collect(write(gen)), { what: 'a section', retries: 3, log: silentLog });
    expect(text).toBe('After the wait.');
    const [refused, retried] = fake.requests;
    expect(fake.requests).toHaveLength(2);
    // Measured on the fake: from the moment its refusal was sent to the retry's arrival.
    expect(retried!.receivedAt - refused!.repliedAt!).toBeGreaterThanOrEqual(1_000 - TIMER_SLACK_MS);
  });

  it('classifies a refusal with what it asks for: retryable with Retry-After, or not at all', async () => {
    fake.script({ kind: 'status', status: 429, retryAfter: '7' }, { kind: 'status', status: 400 });
    const gen = generator();
    const limited = await collect(write(gen)).catch((error: unknown) => error);
    expect(limited).toBeInstanceOf(AiServiceError);
    expect(limited).toMatchObject({ status: 429, retryable: true, retryAfterMs: 7_000 });
    const refused = await retryGeneration(() => collect(write(gen)), { what: 'a section', retries: 3, log: silentLog }).catch((error: unknown) => error);
    // A request the service refuses as such would be refused again: the book fails at once.
    expect(refused).toBeInstanceOf(GenerationError);
    expect((refused as GenerationError).cause).toMatchObject({ status: 400, retryable: false });
    expect(fake.requests).toHaveLength(2);
  });

  it('reads Retry-After in seconds, as an HTTP date, and OpenAI\'s retry-after-ms', () => {
    const now = Date.parse('2026-12-04T12:00:00Z');
    expect(retryAfterMs(new Headers({ 'retry-after': '2' }), now)).toBe(2_000);
    expect(retryAfterMs(new Headers({ 'retry-after': 'Fri, 04 Dec 2026 12:00:30 GMT' }), now)).toBe(30_000);
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '250', 'retry-after': '9' }), now)).toBe(250);
    expect(retryAfterMs(new Headers({ 'retry-after': 'soon' }), now)).toBeUndefined();
    expect(retryAfterMs(new Headers(), now)).toBeUndefined();
  });

  it('fails a call whose connection drops mid-stream, after the chunks it had sent, and a retry writes it whole', async () => {
    fake.script({ kind: 'drop', chunks: ['Half ', 'of it'] });
    const gen = generator();
    const seen: string[] = [];
    const cut = await collect(write(gen), seen).catch((error: unknown) => error);
    expect(seen).toEqual(['Half ', 'of it']);
    expect(cut).toBeInstanceOf(AiServiceError);
    expect(cut).toMatchObject({ retryable: true });
    expect(await retryGeneration(() => collect(write(gen)), { what: 'a section', retries: 2, log: silentLog })).toBe(sectionChunks(1, 1).join(''));
  });

  it('fails a call whose answer ends before the model finished (no finish_reason, no [DONE])', async () => {
    fake.script({ kind: 'drop', chunks: ['Ended ', 'early'], clean: true });
    const seen: string[] = [];
    const ended = await collect(write(generator()), seen).catch((error: unknown) => error);
    expect(seen).toEqual(['Ended ', 'early']);
    expect(ended).toBeInstanceOf(AiServiceError);
    expect(ended).toMatchObject({ retryable: true, message: expect.stringContaining('before the model finished') });
  });

  it('fails a call whose stream goes silent past the timeout (OPENAI_TIMEOUT_MS)', async () => {
    const never = deferred();
    fake.script({ kind: 'stream', chunks: ['Slow ', 'and then nothing'], before: (i) => (i === 1 ? never.promise : Promise.resolve()) });
    const seen: string[] = [];
    const silent = await collect(write(generator({ timeoutMs: 300 })), seen).catch((error: unknown) => error);
    expect(seen).toEqual(['Slow ']);
    expect(silent).toBeInstanceOf(AiServiceError);
    expect(silent).toMatchObject({ retryable: true, message: expect.stringContaining('300 ms') });
    never.resolve();
  });

  it('stops a call when its signal aborts, and is not the one to blame', async () => {
    const never = deferred();
    fake.script({ kind: 'stream', chunks: ['Begun ', 'never ended'], before: (i) => (i === 1 ? never.promise : Promise.resolve()) });
    const controller = new AbortController();
    const chunks = write(generator(), controller.signal)[Symbol.asyncIterator]();
    expect((await chunks.next()).value).toBe('Begun ');
    controller.abort(new Error('shutting down'));
    await expect(withTimeout(chunks.next(), 5_000, 'the aborted call to end')).rejects.toThrow('shutting down');
    // The request itself ended, not only the wait for it.
    await withTimeout(fake.requests[0]!.closed, 5_000, 'the aborted request to close');
    never.resolve();
  });

  it('stops an outline call when its signal aborts', async () => {
    const never = deferred();
    fake.script({ kind: 'stream', chunks: ['1. One\n', '2. Two\n'], before: (i) => (i === 1 ? never.promise : Promise.resolve()) });
    const controller = new AbortController();
    const outline = generator().outline(BOOK, controller.signal);
    await withTimeout(fake.received(1), 5_000, 'the outline request');
    controller.abort(new Error('shutting down'));
    await expect(withTimeout(outline, 5_000, 'the aborted outline to end')).rejects.toThrow('shutting down');
    await withTimeout(fake.requests[0]!.closed, 5_000, 'the aborted request to close');
    never.resolve();
  });
});

describe('a whole book written by a server with GENERATOR=openai', () => {
  let database: TestDatabase;
  let sql: postgres.Sql;
  let service: Service;
  const events: TextEvent[] = [];

  beforeAll(async () => {
    fake = await FakeOpenAI.start();
    database = await createTestDatabase();
    sql = postgres(database.url, { max: 1, onnotice: () => {} });
    const config = testConfig({ DATABASE_URL: database.url, GENERATOR: 'openai', OPENAI_BASE_URL: fake.baseUrl, OPENAI_API_KEY: 'sk-test', OPENAI_MODEL: 'fake-model' });
    service = await startService(config, silentLog, { onText: (event) => void events.push(event) });
  });

  afterAll(async () => {
    await service?.close();
    await fake?.close();
    await sql?.end();
    await database?.drop();
  });

  async function written(bookId: string): Promise<string> {
    const run = service.orchestrator.settled(bookId);
    expect(run, 'the run of a book started here').toBeDefined();
    return withTimeout(run!, 20_000, 'the book to be written');
  }

  it('reaches COMPLETE with the chapters the model wrote in Postgres, and counts the tokens', async () => {
    const created = await createBook(service.url, 'The Served Fake', 2, 2);
    expect(await written(created.bookId)).toBe('COMPLETE');
    const state = (await (await fetch(`${service.url}/api/ai/progress/${created.bookId}`)).json()) as { data: { status: string } };
    expect(state.data.status).toBe('COMPLETE');
    const rows = await chapterRows(sql, created.bookId);
    expect(rows.map(({ number, title, content }) => ({ number, title, content }))).toEqual(
      [1, 2].map((n) => ({ number: n, title: `Fake Chapter ${n}`, content: [1, 2].map((s) => sectionChunks(n, s).join('')).join('\n\n') })),
    );
    // The outline and one call per section, nothing more.
    const mine = fake.requests.filter((r) => r.body.messages.some((m) => m.content.includes('The Served Fake')));
    expect(mine).toHaveLength(1 + 4);
    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    expect(metrics).toMatch(/^booksai_generator_tokens_total\{kind="completion"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^booksai_generator_tokens_total\{kind="prompt"\} [1-9]\d*$/m);
  });

  it('retries a section whose stream was cut, telling the text sink to reset it, and saves it once', async () => {
    // The outline answers; the first section's answer is cut after two chunks; the rest answer.
    fake.script(answerFor, { kind: 'drop', chunks: ['Section ', '1.1 '] });
    const created = await createBook(service.url, 'The Cut Fake', 1, 1);
    expect(await written(created.bookId)).toBe('COMPLETE');
    const whole = sectionChunks(1, 1);
    const seen = events.filter((e) => e.bookId === created.bookId).map((e) => (e.type === 'reset' ? 'RESET' : e.text));
    expect(seen).toEqual(['Section ', '1.1 ', 'RESET', ...whole]);
    const rows = await chapterRows(sql, created.bookId);
    expect(rows.map((r) => r.content)).toEqual([whole.join('')]);
  });
});
