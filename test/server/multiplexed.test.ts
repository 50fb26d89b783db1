import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { Watch } from '../support/events.js';
import { startTestService } from '../support/service.js';
import { until } from '../support/wait.js';
import { bookId, expectError } from './http.js';

let service: Service;
const watches: Watch[] = [];

beforeAll(async () => {
  service = await startTestService({ MAX_BOOKS_PER_STREAM: '5' });
});
afterEach(() => {
  for (const w of watches.splice(0)) w.close();
});
afterAll(async () => {
  await service.close();
});

const streamUrl = (books: string[], lastEventId?: string) =>
  `${service.url}/api/ai/stream?books=${books.join(',')}${lastEventId === undefined ? '' : `&lastEventId=${lastEventId}`}`;

describe('multiplexed stream', () => {
  it('carries several books on one connection, with the versions of all of them as the event id', async () => {
    const [a, b, c] = [bookId('mux'), bookId('mux'), bookId('mux')];
    await service.tracker.updateProgress(a, { message: 'a1' });
    await service.tracker.updateProgress(b, { message: 'b1' });
    const watch = new Watch(streamUrl([a, b, c]));
    watches.push(watch);
    await until(() => watch.states.length === 2, 5_000, 'the current states of a and b');
    expect(watch.ids).toEqual(['1.0.0', '1.1.0']);

    await service.tracker.updateProgress(c, { message: 'c1' });
    await service.tracker.updateProgress(a, { message: 'a2' });
    await until(() => watch.states.length === 4, 5_000, 'the updates of c and a');
    expect(watch.ids.slice(2)).toEqual(['1.1.1', '2.1.1']);
    expect(service.hub.stats().topics).toBe(3);
  });

  it('resumes from a Last-Event-ID: only what is newer, per book', async () => {
    const [a, b] = [bookId('resume'), bookId('resume')];
    for (let i = 0; i < 3; i++) await service.tracker.updateProgress(a, { message: `a${i}` });
    await service.tracker.updateProgress(b, { message: 'b0' });
    const watch = new Watch(streamUrl([a, b], '3.0'));
    watches.push(watch);
    await watch.next((s) => s.bookId === b, 5_000, 'book b');
    await service.tracker.updateProgress(a, { message: 'a3' });
    await watch.next((s) => s.bookId === a, 5_000, 'the next state of a');
    expect(watch.states.map((s) => `${s.bookId === a ? 'a' : 'b'}${s.version}`)).toEqual(['b1', 'a4']);
  });

  it('ends when every book is finished, and answers 204 to a client that has every final state', async () => {
    const [a, b] = [bookId('done'), bookId('done')];
    await service.tracker.updateProgress(a, {});
    await service.tracker.updateProgress(b, {});
    const watch = new Watch(streamUrl([a, b]));
    watches.push(watch);
    await until(() => watch.states.length === 2, 5_000, 'both states');
    await service.tracker.markComplete(a, 0);
    await service.tracker.markError(b, 'failed');
    await until(() => watch.source.readyState === 2, 10_000, 'the EventSource to stop reconnecting');
    expect(watch.states.map((s) => s.status)).toEqual(['PLANNING', 'PLANNING', 'COMPLETE', 'ERROR']);
    const again = await fetch(streamUrl([a, b], '2.2'));
    expect(again.status).toBe(204);
  });

  it('refuses too many books, thousands of books, bad ids and bad Last-Event-IDs with a 400', async () => {
    const six = Array.from({ length: 6 }, () => bookId('cap'));
    await expectError(await fetch(streamUrl(six)), 400, 'too_many_books');
    const thousands = Array.from({ length: 2_000 }, (_, i) => `b${i}`);
    await expectError(await fetch(streamUrl(thousands)), 400, 'too_many_books');
    await expectError(await fetch(`${service.url}/api/ai/stream?books=ok,b%C3%B6k`), 400, 'invalid_book_id');
    await expectError(await fetch(`${service.url}/api/ai/stream?books=`), 400, 'invalid_books');
    await expectError(await fetch(streamUrl(['x', 'y'], '1')), 400, 'invalid_last_event_id');
    await expectError(await fetch(streamUrl(['x', 'y'], '1.-1')), 400, 'invalid_last_event_id');
    expect(service.streams.size).toBe(0);
  });

  it('streams every book to a list page, with the latest states of recent books first', async () => {
    const created = await fetch(`${service.url}/api/books`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Listed', chapters: 1, sectionsPerChapter: 1 }),
    });
    const { data } = (await created.json()) as { data: { bookId: string } };
    await until(async () => (await fetch(`${service.url}/api/ai/progress/${data.bookId}`)).status === 200, 10_000, 'the demo book to publish');
    const watch = new Watch(`${service.url}/api/ai/stream`);
    watches.push(watch);
    await watch.next((s) => s.bookId === data.bookId, 5_000, 'the recent demo book');
    const other = bookId('any');
    await service.tracker.updateProgress(other, { message: 'from anywhere' });
    await watch.next((s) => s.bookId === other, 5_000, 'a book nobody listed');
    expect(watch.ids.every((id) => id === '')).toBe(true);
  });
});
