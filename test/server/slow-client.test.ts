import { request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';
import { formatSseEvent } from '../../src/server/delivery/sse.js';
import type { Service } from '../../src/service.js';
import { Watch } from '../support/events.js';
import { withTimeout } from '../support/wait.js';
import { bookId, progressEvents, progressUrl } from './http.js';
import { startServer } from '../support/service.js';

const UPDATES = 6_000;
const MESSAGE_CHARS = 1_900;

let service: Service;
const cleanups: Array<() => void> = [];

beforeAll(async () => {
  service = await startServer();
});

afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

afterAll(async () => {
  await service?.close();
});

/** A plain HTTP client of the stream that can stop reading, so the server's socket backs up. */
class SlowReader {
  bytes = 0;
  text = '';
  readonly #res: IncomingMessage;
  readonly #ended: Promise<void>;
  #onText: () => void = () => {};

  private constructor(res: IncomingMessage) {
    this.#res = res;
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      this.bytes += Buffer.byteLength(chunk);
      this.text += chunk;
      this.#onText();
    });
    this.#ended = new Promise((resolve) => res.once('end', () => resolve()));
  }

  static open(url: string): Promise<SlowReader> {
    return withTimeout(
      new Promise((resolve, reject) => {
        const req = request(url, { agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
          const reader = new SlowReader(res);
          cleanups.push(() => req.destroy());
          resolve(reader);
        });
        req.on('error', reject);
        req.end();
      }),
      5_000,
      'the slow reader to connect',
    );
  }

  get status(): number | undefined {
    return this.#res.statusCode;
  }

  events(): Array<{ id: string; state: BookProgress }> {
    return progressEvents(this.text);
  }

  async firstEvent(): Promise<void> {
    await withTimeout(
      new Promise<void>((resolve) => {
        this.#onText = () => {
          if (this.text.includes('\n\nevent: progress\n') && this.events().length > 0) {
            this.#onText = () => {};
            resolve();
          }
        };
        this.#onText();
      }),
      5_000,
      'the first event on the slow reader',
    );
  }

  stopReading(): void {
    this.#res.pause();
  }

  resumeReading(): void {
    this.#res.resume();
  }

  ended(ms: number): Promise<void> {
    return withTimeout(this.#ended, ms, 'the server to end the slow stream');
  }
}

describe('a client that stops reading', () => {
  it('costs the server one pending state, holds up nobody, and gets the latest state when it reads again', async () => {
    const id = bookId('slow');
    const url = `${progressUrl(service.url, id)}/stream`;
    const filler = 'x'.repeat(MESSAGE_CHARS);
    await service.tracker.updateProgress(id, { status: 'GENERATING', message: `0 ${filler}` });

    const slow = await SlowReader.open(url);
    expect(slow.status).toBe(200);
    await slow.firstEvent();
    slow.stopReading();

    const fast = new Watch(url);
    cleanups.push(() => fast.close());
    await fast.version(1);

    let publishedBytes = 0;
    let last: BookProgress | undefined;
    for (let i = 1; i <= UPDATES; i++) {
      last = await service.tracker.updateProgress(id, { message: `${i} ${filler}` });
      publishedBytes += Buffer.byteLength(formatSseEvent({ event: 'progress', id: String(last.version), data: JSON.stringify(last) }));
      // The reader that keeps up is never more than a moment behind.
      if (i % 500 === 0) await fast.version(last.version, 2_000);
    }
    const final = await service.tracker.markComplete(id, 0);
    expect(await fast.version(final.version, 2_000)).toEqual(final);
    expect(last?.version).toBe(UPDATES + 1);

    slow.resumeReading();
    await slow.ended(10_000);
    const events = slow.events();
    expect(events.at(-1)).toEqual({ id: String(final.version), state: final });
    const versions = events.map((e) => e.state.version);
    for (let i = 1; i < versions.length; i++) expect(versions[i]).toBeGreaterThan(versions[i - 1] as number);
    expect(events.map((e) => e.id)).toEqual(versions.map(String));
    // What the socket buffers is bounded; the rest was replaced by newer states instead of queued.
    expect(slow.bytes).toBeLessThan(publishedBytes / 2);
    expect(events.length).toBeLessThan(UPDATES / 2);
  });
});
