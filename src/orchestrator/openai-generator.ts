import OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { AiServiceError, classifyAiError } from './ai-errors.js';
import type { BookSpec, ChapterPlan, Generator, PreparationStep } from './generator.js';
import type { GeneratorMetrics } from './generator-metrics.js';

export interface OpenAIGeneratorOptions {
  /** The API root, such as https://api.openai.com/v1 or http://localhost:11434/v1 (Ollama). */
  baseUrl: string;
  apiKey: string;
  model: string;
  /** The longest wait for an answer to start, and between two of its chunks; past it the call failed. */
  timeoutMs: number;
  metrics?: GeneratorMetrics;
}

/** About how long a section is asked to be. */
const SECTION_WORDS = 250;

/**
 * Writes books with any server of the OpenAI chat-completions streaming API (OpenAI, vLLM,
 * llama.cpp's server, Ollama, LM Studio). The client makes each call once (maxRetries 0): the
 * pipeline's retry policy owns retries, honouring Retry-After (see AiServiceError). An answer
 * that stops before the model finished (connection dropped, no finish_reason, silent past
 * timeoutMs) is a failed call.
 */
export class OpenAIGenerator implements Generator {
  readonly #client: OpenAI;
  readonly #options: OpenAIGeneratorOptions;

  constructor(options: OpenAIGeneratorOptions) {
    this.#options = options;
    this.#client = new OpenAI({
      baseURL: options.baseUrl,
      apiKey: options.apiKey,
      maxRetries: 0,
      timeout: options.timeoutMs,
      // Said explicitly, so the client reads none of its own environment variables.
      organization: null,
      project: null,
      webhookSecret: null,
      logLevel: 'off',
    });
  }

  /** These steps produce no text: no call, so no cost. */
  async prepare(_step: PreparationStep, _book: BookSpec): Promise<void> {}

  async outline(book: BookSpec, signal = new AbortController().signal): Promise<ChapterPlan[]> {
    let text = '';
    // The pipeline's signal, so a shutdown also ends the request, not only the wait for it.
    for await (const chunk of this.#stream(outlinePrompt(book), signal)) text += chunk;
    return parseOutline(text, book.chapters);
  }

  writeSection(book: BookSpec, chapter: ChapterPlan, section: number, signal: AbortSignal): AsyncIterable<string> {
    return this.#stream(sectionPrompt(book, chapter, section), signal);
  }

  async *#stream(messages: ChatCompletionMessageParam[], signal: AbortSignal): AsyncGenerator<string> {
    const { timeoutMs, model, metrics } = this.#options;
    const silent = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => silent.abort(), timeoutMs);
    };
    let finished = false;
    try {
      const stream = await this.#client.chat.completions.create(
        { model, messages, stream: true, stream_options: { include_usage: true } },
        { signal: AbortSignal.any([signal, silent.signal]) },
      );
      arm();
      for await (const chunk of stream) {
        clearTimeout(timer);
        if (chunk.usage) metrics?.count(chunk.usage);
        const choice = chunk.choices[0];
        if (choice?.finish_reason) finished = true;
        const text = choice?.delta?.content;
        if (text) yield text;
        // The wait for the service starts again once the caller took the chunk.
        arm();
      }
    } catch (error) {
      // Aborted by the caller, before the answer started or during it: its reason, as the Generator contract has it.
      signal.throwIfAborted();
      throw classifyAiError(error);
    } finally {
      clearTimeout(timer);
    }
    // The client ends an aborted stream quietly: say why it ended.
    signal.throwIfAborted();
    if (silent.signal.aborted) throw new AiServiceError(`the AI service sent nothing for ${timeoutMs} ms`, true, undefined, undefined);
    if (!finished) throw new AiServiceError('the AI service ended its answer before the model finished', true, undefined, undefined);
  }
}

function outlinePrompt(book: BookSpec): ChatCompletionMessageParam[] {
  return [
    { role: 'system', content: 'You plan non-fiction books. Answer with chapter titles only, one per line, without numbers, quotes or any other text.' },
    { role: 'user', content: `List exactly ${book.chapters} chapter titles for the book "${book.title}".` },
  ];
}

function sectionPrompt(book: BookSpec, chapter: ChapterPlan, section: number): ChatCompletionMessageParam[] {
  return [
    { role: 'system', content: 'You write non-fiction books. Answer with the requested prose only: no headings, no titles, no markdown.' },
    {
      role: 'user',
      content:
        `Book: "${book.title}" (${book.chapters} chapters of ${book.sectionsPerChapter} sections). ` +
        `Write section ${section} of ${book.sectionsPerChapter} of chapter ${chapter.number}, "${chapter.title}", in about ${SECTION_WORDS} words.`,
    },
  ];
}

/**
 * The titles of the model's answer, one a line, stripped of the numbering and quoting models add
 * anyway; exactly `count` of them (missing ones are named by number).
 */
export function parseOutline(text: string, count: number): ChapterPlan[] {
  const titles = text
    .split('\n')
    .map((line) => line.replace(/^\s*(?:[-*•]|\d+[.):]|chapter\s+\d+\s*[:.-])?\s*/i, '').replace(/^["'“”*]+|["'“”*]+$/g, '').trim())
    .filter((line) => line !== '');
  return Array.from({ length: count }, (_, i) => ({ number: i + 1, title: titles[i] ?? `Chapter ${i + 1}` }));
}
