import { EventSource } from 'eventsource';
import type { FetchLike } from 'eventsource';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { Watch } from '../support/events.js';
import { startServer } from '../support/service.js';
import { withTimeout } from '../support/wait.js';
import { RawStream, bookId, expectError, progressEvents, progressUrl, published } from './http.js';

let service: Service;
const watches: Watch[] = [];
const raws: RawStream[] = [];

beforeAll(async () => {
  service = await startServer();
});

afterEach(() => {
  for (const watch of watches.splice(0)) watch.close();
  for (const raw of raws.splice(0)) raw.close();
});

afterAll(async () => {
  await service?.close();
});

const streamUrl = (id: string, query = '') => `${progressUrl(service.url, id)}/stream${query}`;

function watch(id: string, init?: ConstructorParameters<typeof EventSource>[1], query = ''): Watch {
  const w = new Watch(streamUrl(id, query), init);
  watches.push(w);
  return w;
}

async function raw(id: string, headers: Record<string, string> = {}, query = ''): Promise<RawStream> {
  const stream = await RawStream.open(streamUrl(id, query), headers);
  raws.push(stream);
  return stream;
}

/** An EventSource fetch that sends `lastEventId` on the first request; the library's own header wins on reconnects. */
function withLastEventId(lastEventId: string): { fetch: FetchLike } {
  return { fetch: (url, init) => fetch(url, { ...init, headers: { 'Last-Event-ID': lastEventId, ...init.headers } }) };
}

/** Resolves once the EventSource has given up: readyState CLOSED after an error. */
function closedByServer(source: EventSource, ms: number): Promise<void> {
  if (source.readyState === EventSource.CLOSED) return Promise.resolve();
  const closed = new Promise<void>((resolve) => {
    const onError = () => {
      if (source.readyState !== EventSource.CLOSED) return;
      source.removeEventListener('error', onError);
      resolve();
    };
    source.addEventListener('error', onError);
  });
  return withTimeout(closed, ms, 'the EventSource to be closed by the server');
}

const publishes = (id: string, n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => () => service.tracker.updateProgress(id, { status: 'GENERATING', message: `update ${from + i + 1}` }));

async function inOrder(steps: Array<() => Promise<BookProgress>>): Promise<BookProgress[]> {
  const states: BookProgress[] = [];
  for (const step of steps) states.push(await step());
  return states;
}

describe('GET /api/ai/progress/:bookId/stream', () => {
  it('sends SSE headers, a retry hint, then the current state as a progress event with id = version', async () => {
    const id = bookId('headers');
    const current = await published(service.url, id, { status: 'GENERATING', message: 'hello' });

    const stream = await raw(id);
    expect(stream.response.status).toBe(200);
    expect(stream.response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(stream.response.headers.get('cache-control')).toBe('no-cache, no-transform');
    expect(stream.response.headers.get('x-accel-buffering')).toBe('no');

    const text = await stream.until((t) => t.includes('\n\nevent: progress'), 5_000, 'the first progress event');
    await stream.until((t) => t.endsWith('\n\n') && progressEvents(t).length === 1);
    expect(stream.text).toBe(`retry: 3000\n\nevent: progress\nid: ${current.version}\ndata: ${JSON.stringify(current)}\n\n`);
    expect(text.startsWith('retry: 3000\n\n')).toBe(true);
  });

  it('then sends every update as a progress event whose id is its version', async () => {
    const id = bookId('updates');
    await published(service.url, id, { status: 'GENERATING', message: 'first' });
    const w = watch(id);
    await w.version(1);

    const sent = [
      await published(service.url, id, { message: 'second', generationStep: 'RESEARCH' }),
      await published(service.url, id, { message: 'third', generationStep: 'OUTLINE' }),
    ];
    await w.version(3);
    expect(w.states.slice(1)).toEqual(sent);
    expect(w.ids).toEqual(['1', '2', '3']);
  });

  it('opens for a book without progress and sends its first state when it is published', async () => {
    const id = bookId('empty');
    const w = watch(id);
    await w.opened();
    const first = await published(service.url, id, { status: 'PLANNING', message: 'starting' });
    expect(await w.version(1)).toEqual(first);
    expect(w.states).toHaveLength(1);
  });

  it('brings 50 watchers through 100 updates, each in strictly increasing order and ending on the last', async () => {
    const id = bookId('fanout');
    await published(service.url, id, { status: 'GENERATING', message: 'start' });
    const all = Array.from({ length: 50 }, () => watch(id));
    await Promise.all(all.map((w) => w.version(1)));

    const sent = await inOrder(publishes(id, 100));
    const last = sent.at(-1) as BookProgress;
    expect(last.version).toBe(101);

    await Promise.all(all.map((w) => w.version(last.version, 10_000)));
    for (const w of all) {
      const versions = w.states.map((s) => s.version);
      for (let i = 1; i < versions.length; i++) expect(versions[i]).toBeGreaterThan(versions[i - 1] as number);
      expect(w.ids).toEqual(versions.map(String));
      expect(w.last).toEqual(last);
    }
  });

  describe('resuming with Last-Event-ID', () => {
    it.each([
      ['the Last-Event-ID header', (v: string) => ({ init: withLastEventId(v), query: '' })],
      ['?lastEventId=', (v: string) => ({ init: undefined, query: `?lastEventId=${v}` })],
    ])('via %s gets only the latest state when it is newer', async (_, how) => {
      const id = bookId('resume');
      const states = await inOrder(publishes(id, 5));
      const { init, query } = how('2');
      const w = watch(id, init, query);
      await w.version(5);
      expect(w.states).toEqual([states[4]]);
      expect(w.ids).toEqual(['5']);
    });

    it.each([
      ['the Last-Event-ID header', (v: string) => ({ init: withLastEventId(v), query: '' })],
      ['?lastEventId=', (v: string) => ({ init: undefined, query: `?lastEventId=${v}` })],
    ])('via %s gets nothing it already has, then the next update', async (_, how) => {
      const id = bookId('resume-current');
      await inOrder(publishes(id, 3));
      const { init, query } = how('3');
      const w = watch(id, init, query);
      await w.opened();
      const next = await published(service.url, id, { message: 'after resume' });
      await w.version(4);
      expect(w.states).toEqual([next]);
    });

    it('lets the header win over the query parameter', async () => {
      const id = bookId('resume-both');
      await inOrder(publishes(id, 4));
      const w = watch(id, withLastEventId('4'), '?lastEventId=1');
      await w.opened();
      await published(service.url, id, { message: 'five' });
      await w.version(5);
      expect(w.states.map((s) => s.version)).toEqual([5]);
    });

    it.each(['-1', '+1', 'abc', '1.5', '1e3', '0x10', '99999999999999999999', '9007199254740993'])(
      'refuses Last-Event-ID %j with 400 JSON, in the header and in the query',
      async (value) => {
        const id = bookId('bad-last-id');
        await expectError(await fetch(streamUrl(id), { headers: { 'Last-Event-ID': value } }), 400, 'invalid_last_event_id');
        await expectError(await fetch(streamUrl(id, `?lastEventId=${encodeURIComponent(value)}`)), 400, 'invalid_last_event_id');
      },
    );

    it('refuses an invalid bookId with 400 JSON', async () => {
      await expectError(await fetch(streamUrl('bök')), 400, 'invalid_book_id');
    });
  });

  describe('a finished book', () => {
    it('sends the COMPLETE state and ends the stream; a reconnect with its version gets 204', async () => {
      const id = bookId('complete');
      await published(service.url, id, { status: 'GENERATING', generationStep: 'CHAPTERS', totalChapters: 3, currentChapter: 2 });
      const stream = await raw(id);
      await stream.until((t) => progressEvents(t).length === 1 && t.endsWith('\n\n'));

      const final = await service.tracker.markComplete(id, 3);
      const text = await stream.end();
      const events = progressEvents(text);
      expect(events.at(-1)).toEqual({ id: String(final.version), state: final });
      expect(final).toMatchObject({ status: 'COMPLETE', overallProgress: 100, currentChapter: 3 });

      const again = await fetch(streamUrl(id), { headers: { 'Last-Event-ID': String(final.version) } });
      expect(again.status).toBe(204);
      expect(await again.text()).toBe('');
    });

    it('sends a finished state to a new watcher once, then ends', async () => {
      const id = bookId('failed');
      await published(service.url, id, { status: 'GENERATING', message: 'working' });
      const failed = await service.tracker.markError(id, 'model timed out');
      const stream = await raw(id);
      const events = progressEvents(await stream.end());
      expect(events).toEqual([{ id: String(failed.version), state: failed }]);
    });

    it('closes a real EventSource instead of reconnecting forever', async () => {
      const id = bookId('es-complete');
      await published(service.url, id, { status: 'GENERATING', message: 'working' });
      const w = watch(id);
      await w.version(1);
      const closed = closedByServer(w.source, 10_000);

      const final = await service.tracker.markComplete(id, 0);
      expect(await w.version(final.version)).toEqual(final);
      // The stream ends; EventSource reconnects once after the retry hint with Last-Event-ID, gets 204, and stops.
      await closed;
      expect(w.source.readyState).toBe(EventSource.CLOSED);
      expect(w.states.map((s) => s.version)).toEqual([1, final.version]);
      expect(w.errors).toBe(2);
    });

    it('closes an EventSource that resumes at the final version without sending anything', async () => {
      const id = bookId('es-final');
      await published(service.url, id, { status: 'GENERATING', message: 'working' });
      const final = await service.tracker.markComplete(id, 0);
      const w = watch(id, withLastEventId(String(final.version)));
      await closedByServer(w.source, 5_000);
      expect(w.states).toEqual([]);
    });
  });

  it('delivers text that looks like SSE fields as one event per update, message intact', async () => {
    const id = bookId('inject');
    await published(service.url, id, { status: 'GENERATING', message: 'plain' });
    const w = watch(id);
    let unnamed = 0;
    w.source.addEventListener('message', () => unnamed++);
    await w.version(1);

    const messages = [
      'before\n\nevent: progress\nid: 999\ndata: {}',
      'line\r\ndata: x',
      'retry: 1\r\rid: 7\n\n\nevent: message\ndata: hi\n\n',
      ': looks like a comment',
    ];
    const sent = await inOrder(messages.map((message) => () => published(service.url, id, { message })));
    const end = await published(service.url, id, { message: 'end' });
    await w.version(end.version);

    expect(w.states.slice(1)).toEqual([...sent, end]);
    expect(w.states.slice(1, -1).map((s) => s.message)).toEqual(messages);
    expect(w.ids).toEqual(w.states.map((s) => String(s.version)));
    expect(w.source.readyState).toBe(EventSource.OPEN);
    expect(w.errors).toBe(0);
    expect(unnamed).toBe(0);
  });
});
