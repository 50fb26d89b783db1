import type { Logger } from 'pino';
import { FaultLog } from '../fault-log.js';
import { FencedError } from '../progress/tracker.js';
import { rootMessage } from '../store/failures.js';

/** Where in a book a piece of text belongs. */
export interface SectionRef {
  bookId: string;
  chapter: number;
  section: number;
}

/**
 * What the pipeline tells about the text being written: a chunk appended to the section, or a
 * reset (the section starts again from nothing: a call failed part-way and is made again).
 */
export type TextEvent = ({ type: 'chunk'; text: string } | { type: 'reset' }) & SectionRef;

/**
 * Receives the live text of every section a run writes, in order: each write is awaited
 * before the next chunk is passed on (so a slow sink slows the generation, never reorders
 * it). A FencedError stops the run as superseded; any other failure is reported and the
 * section is sent again from a reset, so readers never see a gap. The saved chapter, not this
 * stream, is the truth.
 */
export type TextSink = (event: TextEvent) => void | Promise<void>;

/**
 * One attempt at one section: passes each chunk to the sink and keeps the whole text. After a
 * failed sink write it resends the text so far, behind a reset, with the next chunk.
 */
export class SectionText {
  #text = '';
  #sent = false;
  #broken = false;

  constructor(
    readonly ref: SectionRef,
    readonly sink: TextSink | undefined,
    readonly log: Logger,
  ) {}

  get text(): string {
    return this.#text;
  }

  async append(chunk: string): Promise<void> {
    if (chunk === '') return;
    this.#text += chunk;
    if (!this.sink) return;
    if (this.#broken) {
      if (!(await this.#write({ type: 'reset', ...this.ref }))) return;
      this.#broken = false;
      await this.#write({ type: 'chunk', ...this.ref, text: this.#text });
      return;
    }
    await this.#write({ type: 'chunk', ...this.ref, text: chunk });
  }

  /** The attempt failed: readers drop what they were sent of it. */
  async abandon(): Promise<void> {
    this.#text = '';
    if (this.#sent) await this.#write({ type: 'reset', ...this.ref });
    this.#sent = false;
    this.#broken = false;
  }

  async #write(event: TextEvent): Promise<boolean> {
    try {
      await this.sink?.(event);
      if (event.type === 'chunk') this.#sent = true;
      return true;
    } catch (error) {
      if (error instanceof FencedError) throw error;
      this.#broken = true;
      this.#sent = true;
      FaultLog.of(this.log).report('text_sink', 'passing on live text failed; the section is sent again from a reset', { err: rootMessage(error) });
      return false;
    }
  }
}
