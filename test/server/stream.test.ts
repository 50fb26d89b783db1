import { connect } from 'node:net';
import type { Socket } from 'node:net';
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
    expect(stream.response.headers.get('cache-control')).toBe('private, no-cache, no-transform');
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

/** A raw TCP connection to the server: what it received, as text, and a wait for a pattern in it. */
class RawConnection {
  received = '';
  readonly #socket: Socket;
  readonly #waiters = new Set<() => void>();

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (text: string) => {
      this.received += text;
      for (const waiter of this.#waiters) waiter();
    });
  }

  static async open(request: string): Promise<RawConnection> {
    const socket = connect(Number(new URL(service.url).port), '127.0.0.1');
    await withTimeout(new Promise((resolve) => socket.once('connect', resolve)), 5_000, 'the connection');
    socket.write(request);
    return new RawConnection(socket);
  }

  /** Resolves once `pattern` matches what was received. */
  async receive(pattern: RegExp, what: string): Promise<void> {
    let check = () => {};
    const seen = new Promise<void>((resolve) => {
      check = () => {
        if (pattern.test(this.received)) resolve();
      };
      this.#waiters.add(check);
      check();
    });
    try {
      await withTimeout(seen, 5_000, what);
    } finally {
      this.#waiters.delete(check);
    }
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** `text` as a literal regular expression. */
function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The data of a chunked body: every chunk's bytes, framing removed; throws on a malformed chunk. */
function unchunk(body: string): string {
  let data = '';
  let at = 0;
  while (at < body.length) {
    const lineEnd = body.indexOf('\r\n', at);
    if (lineEnd < 0) break;
    const size = Number.parseInt(body.slice(at, lineEnd), 16);
    if (!Number.isInteger(size)) throw new Error(`bad chunk size line at ${at}: ${JSON.stringify(body.slice(at, at + 20))}`);
    if (body.length < lineEnd + 2 + size + 2) break; // the rest is still on its way
    data += body.slice(lineEnd + 2, lineEnd + 2 + size);
    if (body.slice(lineEnd + 2 + size, lineEnd + 4 + size) !== '\r\n') throw new Error('a chunk does not end with CRLF');
    at = lineEnd + 4 + size;
  }
  return data;
}

describe('the stream on the wire', () => {
  const connections: RawConnection[] = [];
  afterEach(() => {
    for (const connection of connections.splice(0)) connection.close();
  });
  const open = async (request: string) => {
    const connection = await RawConnection.open(request);
    connections.push(connection);
    return connection;
  };
  const eventOf = (state: BookProgress) => `event: progress\nid: ${state.version}\ndata: ${JSON.stringify(state)}\n\n`;

  it('frames each event as chunks of a chunked body for HTTP/1.1', async () => {
    const id = bookId('wire-11');
    const first = await published(service.url, id, { status: 'GENERATING', message: 'één — ü' });
    const connection = await open(`GET /api/ai/progress/${id}/stream HTTP/1.1\r\nHost: test\r\n\r\n`);
    await connection.receive(/\r\n\r\n[\s\S]*id: 1\n/, 'the first event');
    const second = await published(service.url, id, { message: 'two' });
    await connection.receive(/id: 2\n[^\n]*\n\n\r\n/, 'the second event');

    const [head] = connection.received.split('\r\n\r\n', 1) as [string];
    expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(head.toLowerCase()).toContain('transfer-encoding: chunked');
    const data = Buffer.from(unchunk(connection.received.slice(head.length + 4)), 'latin1').toString('utf8');
    expect(data).toBe(`retry: 3000\n\n${eventOf(first)}${eventOf(second)}`);
  });

  it('sends the events unframed to an HTTP/1.0 client, which reads until the connection closes', async () => {
    const id = bookId('wire-10');
    const first = await published(service.url, id, { status: 'GENERATING' });
    const connection = await open(`GET /api/ai/progress/${id}/stream HTTP/1.0\r\nHost: test\r\n\r\n`);
    await connection.receive(/id: 1\n[^\n]*\n\n/, 'the first event');
    const second = await published(service.url, id, { message: 'two' });
    await connection.receive(/id: 2\n[^\n]*\n\n/, 'the second event');

    const [head, body] = connection.received.split('\r\n\r\n', 2) as [string, string];
    expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(head.toLowerCase()).not.toContain('transfer-encoding');
    expect(Buffer.from(body, 'latin1').toString('utf8')).toBe(`retry: 3000\n\n${eventOf(first)}${eventOf(second)}`);
  });

  it('answers pipelined streams in order: the second starts when the first ends, with what it missed', async () => {
    const [a, b] = [bookId('wire-first'), bookId('wire-second')];
    await published(service.url, a, { status: 'GENERATING' });
    await published(service.url, b, { status: 'GENERATING' });
    const get = (id: string) => `GET /api/ai/progress/${id}/stream HTTP/1.1\r\nHost: test\r\n\r\n`;
    const connection = await open(get(a) + get(b));
    await connection.receive(/id: 1\n[^\n]*\n\n\r\n/, 'the first stream');
    // The second waits behind the first, which holds the connection until its book finishes.
    const missed = await published(service.url, b, { message: 'while waiting' });
    const aFinal = await service.tracker.markComplete(a, 0);
    await connection.receive(/\r\n0\r\n\r\nHTTP\/1\.1 200 OK[\s\S]*id: 2\n[^\n]*\n\n\r\n/, 'the second stream');
    const bNext = await published(service.url, b, { message: 'after' });
    await connection.receive(/id: 3\n[^\n]*\n\n\r\n/, 'its next event');

    const [first, second] = connection.received.split(/(?=HTTP\/1\.1 200 OK)/).slice(0, 2) as [string, string];
    const bodyOf = (response: string) => unchunk(response.slice(response.indexOf('\r\n\r\n') + 4));
    expect(bodyOf(first)).toMatch(new RegExp(`^retry: 3000\\n\\nevent: progress\\nid: 1\\n[^\\n]*\\n\\n${escape(eventOf(aFinal))}$`));
    expect(first.endsWith('\r\n0\r\n\r\n')).toBe(true);
    expect(bodyOf(second)).toBe(`retry: 3000\n\n${eventOf(missed)}${eventOf(bNext)}`);
  });

});
