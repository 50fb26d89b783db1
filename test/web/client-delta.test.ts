import { EventSource } from 'eventsource';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { watch } from '../../web/client.js';
import type { Watching } from '../../web/client.js';
import { startServer } from '../support/service.js';
import { until } from '../support/wait.js';

let service: Service;
let watching: Watching | null = null;
let n = 0;
const book = () => `client-mp-${process.pid}-${Date.now()}-${n++}`;

beforeAll(async () => {
  service = await startServer();
});
afterEach(() => {
  watching?.close();
  watching = null;
});
afterAll(async () => {
  await service.close();
});

/** The eventsource package's EventSource, counting the patch events it receives and the URLs it opens. */
function countingEventSource() {
  const urls: string[] = [];
  let patches = 0;
  class Counting extends EventSource {
    constructor(url: string | URL, init?: ConstructorParameters<typeof EventSource>[1]) {
      super(url, init);
      urls.push(String(url));
      this.addEventListener('patch', () => patches++);
    }
  }
  return { EventSource: Counting, urls, patches: () => patches };
}

describe('web client watch() with deltas', () => {
  it('asks for merge patches and passes on every state exactly, for one book, several, and all', async () => {
    // Across the shapes: the every-book stream starts with the recent books' states.
    const published = new Map<string, BookProgress>();
    for (const shape of ['one', 'several', 'all'] as const) {
      const [a, b] = [book(), book()];
      const record = (s: BookProgress) => published.set(`${s.bookId}@${s.version}`, s);
      record(await service.tracker.updateProgress(a, { status: 'GENERATING', totalChapters: 3, message: 'a' }));
      record(await service.tracker.updateProgress(b, { status: 'GENERATING', totalChapters: 3, message: 'b' }));
      const seen: BookProgress[] = [];
      const es = countingEventSource();
      const books = shape === 'one' ? [a] : shape === 'several' ? [a, b] : 'all';
      let live = false;
      watching = watch(books, (p) => seen.push(p), { EventSource: es.EventSource, baseUrl: service.url, onConnection: (s) => (live ||= s === 'live') });
      await until(() => live, 5_000, 'the live stream');
      if (shape !== 'all') await until(() => seen.some((s) => s.bookId === a), 5_000, 'the first state');
      for (let i = 1; i <= 3; i++) {
        record(await service.tracker.updateProgress(a, { currentChapter: i, message: `a chapter ${i}` }));
        record(await service.tracker.updateProgress(b, { currentChapter: i, message: `b chapter ${i}` }));
      }
      const last = await service.tracker.markComplete(a, 3);
      record(last);
      await until(() => seen.some((s) => s.bookId === a && s.version === last.version), 5_000, `the last state (${shape})`);
      expect(es.urls[0]).toContain('delta=merge-patch');
      expect(es.patches()).toBeGreaterThanOrEqual(3);
      for (const state of seen) expect(state).toStrictEqual(published.get(`${state.bookId}@${state.version}`));
      watching.close();
    }
  });

  it('asks for whole states with delta: false', async () => {
    const id = book();
    await service.tracker.updateProgress(id, { status: 'GENERATING' });
    const es = countingEventSource();
    const seen: BookProgress[] = [];
    watching = watch([id], (p) => seen.push(p), { EventSource: es.EventSource, baseUrl: service.url, delta: false });
    await until(() => seen.length === 1, 5_000, 'the first state');
    const next = await service.tracker.updateProgress(id, { message: 'two' });
    await until(() => seen.length === 2, 5_000, 'the second state');
    expect(seen[1]).toStrictEqual(next);
    expect(es.urls[0]).not.toContain('delta');
    expect(es.patches()).toBe(0);
  });
});
