import { EventSource } from 'eventsource';
import type { BookProgress } from '../../src/progress/schema.js';
import { PatchedStates } from '../../web/merge-patch.js';
import { withTimeout } from './wait.js';

/** One event of a delta stream as received: its kind, id, data bytes, and the version it patched (patches). */
export interface DeltaEvent {
  readonly kind: 'progress' | 'patch';
  readonly id: string;
  readonly bytes: number;
  readonly version: number;
  readonly baseVersion?: number;
}

/**
 * A real EventSource on a stream opened with `delta=merge-patch`, applying its patches with the
 * browser client's code (web/merge-patch.ts). Every (re)connection starts with no states, as a
 * new connection of the server does: a patch with nothing to patch is recorded in `unpatchable`.
 */
export class DeltaWatch {
  /** Every state received, whole or patched, in order. */
  readonly states: BookProgress[] = [];
  readonly events: DeltaEvent[] = [];
  readonly unpatchable: string[] = [];
  readonly source: EventSource;
  #patched = new PatchedStates();
  #waiters: Array<{ test: (s: BookProgress) => boolean; resolve: (s: BookProgress) => void }> = [];

  constructor(url: string, init?: ConstructorParameters<typeof EventSource>[1]) {
    this.source = new EventSource(url, init);
    this.source.addEventListener('open', () => {
      this.#patched = new PatchedStates();
    });
    this.source.addEventListener('progress', (event) => {
      const state = this.#patched.whole(JSON.parse(event.data)) as BookProgress;
      this.#received({ kind: 'progress', id: event.lastEventId, bytes: Buffer.byteLength(event.data), version: state.version }, state);
    });
    this.source.addEventListener('patch', (event) => {
      const patch = JSON.parse(event.data) as { bookId: string };
      const base = this.latestOf(patch.bookId);
      const state = this.#patched.patch(patch) as BookProgress | undefined;
      if (state === undefined) {
        this.unpatchable.push(event.data);
        return;
      }
      this.#received({ kind: 'patch', id: event.lastEventId, bytes: Buffer.byteLength(event.data), version: state.version, baseVersion: base?.version ?? 0 }, state);
    });
  }

  get last(): BookProgress | undefined {
    return this.states.at(-1);
  }

  latestOf(bookId: string): BookProgress | undefined {
    return this.states.findLast((s) => s.bookId === bookId);
  }

  opened(ms = 5_000): Promise<void> {
    if (this.source.readyState === EventSource.OPEN) return Promise.resolve();
    return withTimeout(new Promise((resolve) => this.source.addEventListener('open', () => resolve(), { once: true })), ms, 'the stream to open');
  }

  next(test: (s: BookProgress) => boolean, ms = 5_000, what = 'a matching state'): Promise<BookProgress> {
    const seen = this.states.find(test);
    if (seen) return Promise.resolve(seen);
    return withTimeout(new Promise((resolve) => this.#waiters.push({ test, resolve })), ms, what);
  }

  version(v: number, bookId?: string, ms?: number): Promise<BookProgress> {
    return this.next((s) => s.version >= v && (bookId === undefined || s.bookId === bookId), ms, `version ${v}${bookId ? ` of ${bookId}` : ''}`);
  }

  close(): void {
    this.source.close();
  }

  #received(event: DeltaEvent, state: BookProgress): void {
    this.events.push(event);
    this.states.push(state);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.test(state)) return true;
      w.resolve(state);
      return false;
    });
  }
}
