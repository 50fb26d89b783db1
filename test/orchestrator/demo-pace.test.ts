import { describe, expect, it } from 'vitest';
import { DEFAULT_DEMO_TOKENS_PER_SECOND } from '../../src/config.js';
import { createGenerator } from '../../src/orchestrator/create-generator.js';
import { CHARS_PER_TOKEN, DemoGenerator, sectionText } from '../../src/orchestrator/demo-generator.js';
import type { BookSpec, ChapterPlan, Generator } from '../../src/orchestrator/generator.js';
import { GeneratorMetrics } from '../../src/orchestrator/generator-metrics.js';
import { testConfig } from '../support/service.js';
import { withTimeout } from '../support/wait.js';

const BOOK: BookSpec = { bookId: 'bk_pace', title: 'A Paced Book', chapters: 1, sectionsPerChapter: 3 };
const CHAPTER: ChapterPlan = { number: 1, title: 'Pace' };
/** Timers may fire up to a millisecond early by performance.now(); one per chunk at most. */
const TIMER_SLACK_MS = 2;

interface Timed {
  text: string;
  at: number;
}

/** Every chunk of the book's sections, with when it arrived; `started` is taken before the first call. */
async function writeAll(generator: Generator, sections: number): Promise<{ started: number; chunks: Timed[] }> {
  const signal = new AbortController().signal;
  const started = performance.now();
  const chunks: Timed[] = [];
  for (let section = 1; section <= sections; section++) {
    for await (const text of generator.writeSection(BOOK, CHAPTER, section, signal)) chunks.push({ text, at: performance.now() });
  }
  return { started, chunks };
}

describe('the demo generator writes at DEMO_TOKENS_PER_SECOND', () => {
  it('writes word-sized chunks, never faster than the rate and near it', async () => {
    // A high rate keeps the run short: 3 sections of about 180 characters at 1,600 characters a second.
    const tokensPerSecond = 400;
    const charsPerMs = (tokensPerSecond * CHARS_PER_TOKEN) / 1000;
    const { started, chunks } = await writeAll(new DemoGenerator(0, { tokensPerSecond }), 3);

    const expected = [1, 2, 3].map((s) => sectionText(BOOK, CHAPTER, s));
    expect(chunks.map((c) => c.text).join('')).toBe(expected.join(''));
    for (const { text } of chunks) expect(text).toMatch(/^\S+\s*$/);

    // Each section starts its clock when called: no chunk of it is early, by the characters written up to its end.
    let index = 0;
    let sectionStart = started;
    for (const section of expected) {
      let written = 0;
      const first = index;
      while (written < section.length) {
        const chunk = chunks[index++]!;
        written += chunk.text.length;
        expect(chunk.at - sectionStart, `chunk ${index} ("${chunk.text}")`).toBeGreaterThanOrEqual(written / charsPerMs - TIMER_SLACK_MS);
      }
      expect(index).toBeGreaterThan(first);
      sectionStart = chunks[index - 1]!.at;
    }

    const chars = expected.join('').length;
    const elapsed = chunks.at(-1)!.at - started;
    // Never faster than the rate; slower only by what a loaded machine adds (generous: the lower bound is the point).
    expect(elapsed).toBeGreaterThanOrEqual(chars / charsPerMs - TIMER_SLACK_MS);
    expect(elapsed).toBeLessThan((chars / charsPerMs) * 4 + 500);
  });

  it('defaults to 40 tokens a second for the generator GENERATOR=demo builds', async () => {
    expect(DEFAULT_DEMO_TOKENS_PER_SECOND).toBe(40);
    const config = testConfig({ DEMO_TOKENS_PER_SECOND: undefined, DEMO_STEP_MS: '0' });
    expect(config.demoTokensPerSecond).toBe(40);
    const generator = createGenerator(config, new GeneratorMetrics());
    // Its first few words: at 160 characters a second, about a quarter of a second.
    const signal = new AbortController().signal;
    const started = performance.now();
    let written = 0;
    let at = started;
    for await (const chunk of generator.writeSection(BOOK, CHAPTER, 1, signal)) {
      written += chunk.length;
      at = performance.now();
      if (written >= 40) break;
    }
    expect(at - started).toBeGreaterThanOrEqual((written / 160) * 1000 - TIMER_SLACK_MS);
  });

  it('stops waiting for its next word when the signal aborts', async () => {
    const controller = new AbortController();
    // One token a second: the next word is seconds away.
    const chunks = new DemoGenerator(0, { tokensPerSecond: 1 }).writeSection(BOOK, CHAPTER, 1, controller.signal)[Symbol.asyncIterator]();
    const first = chunks.next();
    controller.abort(new Error('stop'));
    await expect(withTimeout(first, 1_000, 'the aborted wait to end')).rejects.toMatchObject({ name: 'AbortError' });
  });
});
