import { setTimeout as delay } from 'node:timers/promises';
import type { BookSpec, ChapterPlan, Generator, PreparationStep } from './generator.js';

const THEMES = [
  'The First Question',
  'Maps and Territories',
  'A Quiet Experiment',
  'What the Data Said',
  'Turning Points',
  'The Long Middle',
  'Unexpected Allies',
  'Measuring Twice',
  'The Cost of Speed',
  'Lessons Kept',
];

const SUBJECTS = ['The team', 'Every draft', 'The reader', 'A good outline', 'The evidence', 'Each chapter', 'The argument'];
const VERBS = ['builds on', 'questions', 'returns to', 'sharpens', 'connects', 'tests', 'reframes'];
const OBJECTS = [
  'the idea introduced earlier',
  'a simple model of the problem',
  'what the numbers suggest',
  'the story so far',
  'an assumption worth checking',
  'the next open question',
];

export interface DemoOptions {
  /**
   * Share of calls (0-1) that fail, as a real AI API's do now and then (DEMO_FAILURE_RATE); a
   * failing section call fails half-way through its text, as a cut stream does.
   */
  failureRate?: number;
  /** Writing pace, at about CHARS_PER_TOKEN characters a token (DEMO_TOKENS_PER_SECOND); unset: no pacing. */
  tokensPerSecond?: number;
  random?: () => number;
}

/** What a token of English text averages, near enough for pacing. */
export const CHARS_PER_TOKEN = 4;

/**
 * Deterministic text and a fixed delay per step (for a section: before its first word), then
 * the section word by word at a model's pace: the whole pipeline runs without an AI service.
 */
export class DemoGenerator implements Generator {
  readonly #stepMs: number;
  readonly #failureRate: number;
  readonly #charsPerMs: number;
  readonly #random: () => number;

  constructor(stepMs: number, options: DemoOptions = {}) {
    this.#stepMs = stepMs;
    this.#failureRate = options.failureRate ?? 0;
    this.#charsPerMs = options.tokensPerSecond === undefined ? Infinity : (options.tokensPerSecond * CHARS_PER_TOKEN) / 1000;
    this.#random = options.random ?? Math.random;
  }

  async prepare(_step: PreparationStep, _book: BookSpec): Promise<void> {
    await this.#step();
  }

  async outline(book: BookSpec, signal?: AbortSignal): Promise<ChapterPlan[]> {
    await this.#step(signal);
    const offset = seed(book.title) % THEMES.length;
    return Array.from({ length: book.chapters }, (_, i) => ({
      number: i + 1,
      title: THEMES[(offset + i) % THEMES.length] as string,
    }));
  }

  async *writeSection(book: BookSpec, chapter: ChapterPlan, section: number, signal: AbortSignal): AsyncIterable<string> {
    const failing = await this.#step(signal, false);
    const words = sectionText(book, chapter, section).match(/\S+\s*/g) ?? [];
    const started = performance.now();
    let written = 0;
    for (const [index, word] of words.entries()) {
      if (failing && index === Math.floor(words.length / 2)) throw new Error(FAILURE);
      written += word.length;
      // Due when its last character is written: one timer per word that is due later, none at all when unpaced.
      const wait = started + written / this.#charsPerMs - performance.now();
      if (wait >= 1) await delay(wait, undefined, { signal });
      signal.throwIfAborted();
      yield word;
    }
  }

  /** Waits the step; true when the call is to fail (thrown here when `throwNow`). */
  async #step(signal?: AbortSignal, throwNow = true): Promise<boolean> {
    await delay(this.#stepMs, undefined, { signal });
    const failing = this.#failureRate > 0 && this.#random() < this.#failureRate;
    if (failing && throwNow) throw new Error(FAILURE);
    return failing;
  }
}

const FAILURE = 'demo generator: simulated transient failure (DEMO_FAILURE_RATE)';

/** The whole text of a section: the same for the same book title, chapter and section. */
export function sectionText(book: BookSpec, chapter: ChapterPlan, section: number): string {
  const random = prng(seed(`${book.title}/${chapter.number}/${section}`));
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)] as T;
  const sentences = Array.from({ length: 4 }, () => `${pick(SUBJECTS)} ${pick(VERBS)} ${pick(OBJECTS)}.`);
  return `Part ${section}. ${sentences.join(' ')}`;
}

function seed(text: string): number {
  let hash = 2166136261;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 16777619);
  return hash >>> 0;
}

/** mulberry32: a small, well-known deterministic generator. */
function prng(start: number): () => number {
  let state = start;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
