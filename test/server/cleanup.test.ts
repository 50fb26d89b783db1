import { request } from 'node:http';
import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RedisBroker } from '../../src/broker/redis.js';
import type { Service } from '../../src/service.js';
import { Watch } from '../support/events.js';
import { startServer } from '../support/service.js';
import { until, withTimeout } from '../support/wait.js';
import { bookId, progressUrl } from './http.js';

let service: Service;
let broker: RedisBroker;
const watches: Watch[] = [];

// A server per test: what one test leaks must not fail the next.
beforeEach(async () => {
  service = await startServer();
  expect(service.broker).toBeInstanceOf(RedisBroker);
  broker = service.broker as RedisBroker;
});

afterEach(async () => {
  for (const watch of watches.splice(0)) watch.close();
  await service?.close();
});

function usage() {
  const { topics, watchers } = service.hub.stats();
  return { topics, watchers, streams: service.streams.size, channels: broker.subscribedChannels() };
}

const idle = { topics: 0, watchers: 0, streams: 0, channels: 0 };

async function untilIdle(): Promise<void> {
  await until(() => JSON.stringify(usage()) === JSON.stringify(idle), 10_000, `nothing is left watched (now ${JSON.stringify(usage())})`);
}

/** Sends a stream request and hangs up `afterMs` after connecting: before, while or after the server opens the stream. */
function abandon(url: string, afterMs: number): Promise<void> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, headers: { accept: 'text/event-stream' } });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.on('socket', (socket) => socket.once('connect', () => setTimeout(() => req.destroy(), afterMs)));
    req.end();
  });
}

describe('listener cleanup', () => {
  it('leaves no topic, watcher, stream or Redis subscription after 200 clients come and go', async () => {
    const books = Array.from({ length: 10 }, () => bookId('cleanup'));
    for (const id of books) await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'watched' });

    for (let i = 0; i < 200; i++) watches.push(new Watch(`${progressUrl(service.url, books[i % books.length] as string)}/stream`));
    await Promise.all(watches.map((w) => w.version(1, 10_000)));
    expect(usage()).toEqual({ topics: 10, watchers: 200, streams: 200, channels: 10 });

    // Half leave while updates flow.
    const leaving = watches.splice(0, 100);
    const publishing = Promise.all(books.map((id) => service.tracker.updateProgress(id, { message: 'still going' })));
    for (const w of leaving) w.close();
    await publishing;
    await until(() => service.hub.stats().watchers === 100, 10_000, '100 watchers are left');

    for (const w of watches.splice(0)) w.close();
    await untilIdle();
  });

  it('leaves nothing behind for a stream pipelined behind another on a connection that closes', async () => {
    const [first, second] = [bookId('pipelined'), bookId('pipelined')];
    for (const id of [first, second]) await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'watched' });
    const socket = connect(Number(new URL(service.url).port), '127.0.0.1');
    const get = (id: string) => `GET /api/ai/progress/${id}/stream HTTP/1.1\r\nHost: test\r\n\r\n`;
    socket.write(get(first) + get(second));
    // The second waits behind the first, which never ends: it joins, but never owns the socket.
    await until(() => service.hub.stats().watchers === 2, 5_000, 'both streams to join');
    socket.destroy();
    await untilIdle();
  });

  it('leaves nothing behind for clients that hang up before the stream opens', async () => {
    // Batches of 10, so each hang-up lands within a few milliseconds of its request reaching the server.
    for (let batch = 0; batch < 20; batch++) {
      const hangUps = Array.from({ length: 10 }, (_, i) => abandon(`${progressUrl(service.url, bookId('hangup'))}/stream`, i));
      await withTimeout(Promise.all(hangUps), 5_000, 'abandoned requests to close');
    }
    await untilIdle();
  });

  it('leaves nothing behind for finished books, refused requests and ended streams', async () => {
    const id = bookId('finished');
    await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'working' });
    const final = await service.tracker.markComplete(id, 0);
    const url = `${progressUrl(service.url, id)}/stream`;

    const answers = await Promise.all([
      ...Array.from({ length: 20 }, () => fetch(url, { headers: { 'Last-Event-ID': String(final.version) } }).then((r) => r.status)),
      ...Array.from({ length: 20 }, () => fetch(url, { headers: { 'Last-Event-ID': 'x' } }).then((r) => r.status)),
      ...Array.from({ length: 20 }, () => fetch(url).then(async (r) => (await r.text(), r.status))),
    ]);
    expect(answers.filter((s) => s === 204)).toHaveLength(20);
    expect(answers.filter((s) => s === 400)).toHaveLength(20);
    expect(answers.filter((s) => s === 200)).toHaveLength(20);
    await untilIdle();
  });
});
