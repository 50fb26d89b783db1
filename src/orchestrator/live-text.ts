import type { Logger } from 'pino';
import type { Fence } from '../broker/commit.js';
import type { TextLog } from '../broker/text-log.js';
import { FaultLog } from '../fault-log.js';
import { FencedError } from '../progress/tracker.js';
import { rootMessage } from '../store/failures.js';
import type { TextEvent } from './section-text.js';

/**
 * One run's live text, written to the text log under the run's fence. A section is begun at
 * its first text in this run (a reset, announced, when it holds text: after a crash or a
 * takeover), begun again at each reset event, and each chunk is appended at the offset the
 * log last answered. A stale owner's writes are refused by the fence (FencedError, which stops
 * the run); any other failure throws, so SectionText sends the section again behind a reset,
 * and the next write begins the section again. Past MAX_SECTION_TEXT_BYTES the section's live
 * text stops (readers get the whole of it from the saved chapter).
 */
export class RunText {
  #section: string | null = null;
  #offset = 0;
  /** A write failed or was refused: the next one begins the section again. */
  #stale = false;
  #capped = false;

  constructor(
    readonly texts: TextLog,
    readonly bookId: string,
    readonly fence: Fence,
    readonly log: Logger,
  ) {}

  async write(event: TextEvent): Promise<void> {
    const key = `${event.chapter}:${event.section}`;
    if (event.type === 'reset' || key !== this.#section || this.#stale) {
      await this.#begin(event.chapter, event.section, key);
      if (event.type === 'reset') return;
    }
    if (this.#capped) return;
    const at = { chapter: event.chapter, section: event.section, offset: this.#offset };
    let result;
    try {
      result = await this.texts.append(this.bookId, at, event.text, this.fence);
    } catch (error) {
      this.#stale = true;
      throw error;
    }
    if (result.ok) {
      this.#offset = result.length;
      return;
    }
    if (result.reason === 'fenced') throw new FencedError(`live text of ${this.bookId}: run ${this.fence} was superseded`);
    if (result.reason === 'too_large') {
      this.#capped = true;
      this.log.warn({ bookId: this.bookId, section: key, length: result.length }, 'section text passed MAX_SECTION_TEXT_BYTES; its live text stops here (the saved chapter has all of it)');
      return;
    }
    // Someone else wrote to the section (or an append that timed out did land): start it over.
    this.#stale = true;
    throw new Error(`live text of ${this.bookId} ${key}: offset ${at.offset} is not the held length ${result.length}`);
  }

  /** The chapter is in Postgres: its live text expires after the grace. Best effort: it expires with its TTL anyway. */
  async chapterSaved(chapter: number, sections: number): Promise<void> {
    try {
      await this.texts.chapterSaved(this.bookId, chapter, sections);
    } catch (error) {
      FaultLog.of(this.log).report('text_sink', "shortening a saved chapter's live text failed; it expires with its TTL", { err: rootMessage(error) });
    }
  }

  async #begin(chapter: number, section: number, key: string): Promise<void> {
    this.#section = key;
    this.#offset = 0;
    this.#capped = false;
    this.#stale = true;
    const attempt = await this.texts.beginSection(this.bookId, chapter, section, this.fence);
    if (attempt === null) throw new FencedError(`live text of ${this.bookId}: run ${this.fence} was superseded`);
    this.#stale = false;
  }
}
