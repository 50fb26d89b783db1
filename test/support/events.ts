import { EventSource } from 'eventsource';
import type { BookProgress } from '../../src/progress/schema.js';
import { withTimeout } from './wait.js';

/**
 * A real EventSource watching one stream, keeping every progress event it receives.
 * `next(predicate)` resolves with the first received state that satisfies it.
 */
export class Watch {
  readonly states: BookProgress[] = [];
  readonly ids: string[] = [];
  readonly source: EventSource;
  errors = 0;
  #waiters: Array<{ test: (s: BookProgress) => boolean; resolve: (s: BookProgress) => void }> = [];

  constructor(url: string, init?: ConstructorParameters<typeof EventSource>[1]) {
    this.source = new EventSource(url, init);
    this.source.addEventListener('progress', (event) => {
      const state = JSON.parse(event.data) as BookProgress;
      this.states.push(state);
      this.ids.push(event.lastEventId);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.test(state)) return true;
        w.resolve(state);
        return false;
      });
    });
    this.source.addEventListener('error', () => {
      this.errors++;
    });
  }

  /**
   * A watch of one book whose every (re)connection goes to whichever server `target()` names at
   * that moment: for clients that follow a book across server restarts and takeovers.
   */
  static following(target: () => string, bookId: string): Watch {
    return new Watch(`http://follow.invalid/api/ai/progress/${bookId}/stream`, {
      fetch: (input, init) => fetch(String(input).replace('http://follow.invalid', target()), init),
    });
  }

  get last(): BookProgress | undefined {
    return this.states.at(-1);
  }

  opened(ms = 5_000): Promise<void> {
    if (this.source.readyState === EventSource.OPEN) return Promise.resolve();
    return withTimeout(new Promise((resolve) => this.source.addEventListener('open', () => resolve(), { once: true })), ms, 'the stream to open');
  }

  next(test: (s: BookProgress) => boolean, ms = 5_000, what = 'a matching progress event'): Promise<BookProgress> {
    const seen = this.states.find(test);
    if (seen) return Promise.resolve(seen);
    return withTimeout(new Promise((resolve) => this.#waiters.push({ test, resolve })), ms, what);
  }

  version(v: number, ms?: number): Promise<BookProgress> {
    return this.next((s) => s.version >= v, ms, `version ${v}`);
  }

  close(): void {
    this.source.close();
  }
}
