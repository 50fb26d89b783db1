import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { startServer } from '../support/service.js';
import { waitOut, withTimeout } from '../support/wait.js';
import { Watch } from '../support/events.js';

const HEADERS_TIMEOUT_MS = 2_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** Node's timeout check runs every second: a slow client is closed within this long of its deadline. */
const CLOSE_SLACK_MS = 3_000;
const SLOW_CLIENTS = 1_000;

let service: Service;
let port: number;
beforeAll(async () => {
  service = await startServer({ HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS), REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) });
  port = service.port;
});
afterAll(async () => {
  await service?.close();
});

/** A client that sends `start`, then one byte a second of `drip`; resolves with what the server answered once it closed the connection. */
function slowClient(start: string, drip: string): { socket: Socket; closed: Promise<{ answer: string; at: number }> } {
  const socket = connect(port, '127.0.0.1');
  let answer = '';
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  socket.on('connect', () => {
    socket.write(start);
    timer = setInterval(() => socket.write(drip[sent++ % drip.length] as string), 1_000);
  });
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
  socket.on('error', () => {});
  const closed = new Promise<{ answer: string; at: number }>((resolve) =>
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ answer, at: Date.now() });
    }),
  );
  return { socket, closed };
}

describe('slow clients (slowloris)', () => {
  it(`${SLOW_CLIENTS} connections sending their headers a byte a second do not keep others from being answered, and are closed with 408`, async () => {
    const openedAt = Date.now();
    const slow = Array.from({ length: SLOW_CLIENTS }, () => slowClient('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'X-Slow: aaaaaaaaaaaaaaaaaaaa'));
    try {
      // While they dribble: other clients are answered, a stream opens and delivers.
      const answers = await Promise.all(Array.from({ length: 20 }, () => fetch(`${service.url}/healthz`).then((res) => res.status)));
      expect(answers.every((status) => status === 200)).toBe(true);
      await service.tracker.updateProgress('slowloris-book', { message: 'served' });
      const poll = await fetch(`${service.url}/api/ai/progress/slowloris-book`);
      expect(poll.status).toBe(200);

      const results = await withTimeout(Promise.all(slow.map((client) => client.closed)), HEADERS_TIMEOUT_MS + CLOSE_SLACK_MS + 20_000, 'every slow client to be closed');
      for (const { answer } of results) expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(results[0]!.answer).toContain('"code":"request_timeout"');
      // Closed by the headers deadline: before the request one could have come.
      const last = Math.max(...results.map((result) => result.at));
      expect(last - openedAt).toBeLessThan(REQUEST_TIMEOUT_MS);
    } finally {
      for (const client of slow) client.socket.destroy();
    }
  }, 60_000);

  it('a body sent a byte a second is refused with 408 at REQUEST_TIMEOUT_MS', async () => {
    const body = JSON.stringify({ message: 'x'.repeat(200) });
    const client = slowClient(
      `POST /api/ai/progress/slow-body HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
      body,
    );
    const { answer } = await withTimeout(client.closed, REQUEST_TIMEOUT_MS + CLOSE_SLACK_MS + 10_000, 'the slow body to be refused');
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(await fetch(`${service.url}/api/ai/progress/slow-body`).then((res) => res.status)).toBe(404);
  }, 40_000);

  it('a body past MAX_BODY_BYTES is refused with 413, however slowly it comes', async () => {
    const response = await fetch(`${service.url}/api/ai/progress/big-body`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ message: 'x'.repeat(70_000) }) });
    expect(response.status).toBe(413);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
  });

  it('an open stream outlives REQUEST_TIMEOUT_MS', async () => {
    await service.tracker.updateProgress('long-stream', { message: 'first' });
    const watch = new Watch(`${service.url}/api/ai/progress/long-stream/stream`);
    await watch.next((state) => state.message === 'first', 10_000);
    await waitOut(REQUEST_TIMEOUT_MS + CLOSE_SLACK_MS);
    await service.tracker.updateProgress('long-stream', { message: 'after the request timeout' });
    await watch.next((state) => state.message === 'after the request timeout', 10_000);
    // The same connection: it was never cut (EventSource would have reconnected and counted an error).
    expect(watch.errors).toBe(0);
    watch.source.close();
  }, 40_000);
});
