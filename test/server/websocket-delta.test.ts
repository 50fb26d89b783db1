import { once } from 'node:events';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { BookProgress, ProgressUpdate } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { applyMergePatch } from '../../web/merge-patch.js';
import { startServer } from '../support/service.js';
import { until, withTimeout } from '../support/wait.js';
import { bookId } from './http.js';

let service: Service;
const sockets: WebSocket[] = [];

beforeAll(async () => {
  service = await startServer();
});
afterEach(() => {
  for (const ws of sockets.splice(0)) ws.terminate();
});
afterAll(async () => {
  await service.close();
});

interface Received {
  readonly type: 'progress' | 'patch';
  readonly bookId: string;
  readonly state: BookProgress;
  readonly bytes: number;
}

/** A real WebSocket client applying `patch` messages to the state it received last of each book. */
async function connect() {
  const ws = new WebSocket(`${service.url.replace('http', 'ws')}/api/ai/ws`);
  sockets.push(ws);
  const received: Received[] = [];
  const states = new Map<string, unknown>();
  const unpatchable: string[] = [];
  ws.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { type: string; bookId?: string; data?: unknown };
    if (message.type === 'progress') {
      const state = message.data as BookProgress;
      states.set(state.bookId, state);
      received.push({ type: 'progress', bookId: state.bookId, state, bytes: data.toString().length });
    } else if (message.type === 'patch') {
      const base = states.get(message.bookId!);
      if (base === undefined) return void unpatchable.push(data.toString());
      const state = applyMergePatch(base, message.data) as BookProgress;
      states.set(message.bookId!, state);
      received.push({ type: 'patch', bookId: message.bookId!, state, bytes: data.toString().length });
    }
  });
  await withTimeout(once(ws, 'open'), 5_000, 'the WebSocket to open');
  const has = (id: string, version: number) => received.some((r) => r.bookId === id && r.state.version >= version);
  return { ws, received, unpatchable, has, send: (message: unknown) => ws.send(JSON.stringify(message)) };
}

const update: fc.Arbitrary<ProgressUpdate> = fc.oneof(
  fc.record({ message: fc.string({ unit: 'grapheme', maxLength: 30 }) }),
  fc.record({ currentChapter: fc.integer({ min: 0, max: 8 }) }),
  fc.record({ overallProgress: fc.integer({ min: 1, max: 100 }), estimatedEndTime: fc.integer({ min: 0, max: 2 ** 40 }) }),
);

describe('WebSocket subscribe with delta: merge-patch', () => {
  it('sends a book whole first, then patch messages that reproduce every state exactly', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(update, { minLength: 1, maxLength: 8 }), async (updates) => {
        const id = bookId('ws-delta');
        const published = [await service.tracker.updateProgress(id, { status: 'GENERATING', totalChapters: 8 })];
        const client = await connect();
        client.send({ type: 'subscribe', books: [id], delta: 'merge-patch' });
        await until(() => client.has(id, 1), 5_000, 'the first state');
        for (const u of updates) published.push(await service.tracker.updateProgress(id, u));
        await until(() => client.has(id, published.at(-1)!.version), 5_000, 'the last state');
        expect(client.unpatchable).toEqual([]);
        expect(client.received.map((r) => r.type)).toEqual(['progress', ...updates.map(() => 'patch')]);
        for (const r of client.received) expect(r.state).toStrictEqual(published[r.state.version - 1]);
        client.ws.terminate();
      }),
      { numRuns: 15 },
    );
  }, 60_000);

  it('patches only the books subscribed with delta; a resubscription with versions starts whole', async () => {
    const [a, b] = [bookId('ws-delta'), bookId('ws-delta')];
    await service.tracker.updateProgress(a, { status: 'GENERATING', message: 'a1' });
    await service.tracker.updateProgress(b, { status: 'GENERATING', message: 'b1' });
    const client = await connect();
    client.send({ type: 'subscribe', books: [a], delta: 'merge-patch' });
    client.send({ type: 'subscribe', books: [b] });
    await until(() => client.has(a, 1) && client.has(b, 1), 5_000, 'both books');
    await service.tracker.updateProgress(a, { message: 'a2' });
    await service.tracker.updateProgress(b, { message: 'b2' });
    await until(() => client.has(a, 2) && client.has(b, 2), 5_000, 'both updates');
    expect(client.received.filter((r) => r.bookId === a).map((r) => r.type)).toEqual(['progress', 'patch']);
    expect(client.received.filter((r) => r.bookId === b).map((r) => r.type)).toEqual(['progress', 'progress']);
    const patch = client.received.find((r) => r.type === 'patch')!;
    expect(patch.bytes).toBeLessThan(client.received.filter((r) => r.bookId === b).at(-1)!.bytes / 2);

    client.send({ type: 'unsubscribe', books: [a] });
    await until(() => service.hub.stats().watchers === 1, 5_000, 'the unsubscription');
    client.send({ type: 'subscribe', books: [a], versions: { [a]: 2 }, delta: 'merge-patch' });
    await until(() => service.hub.stats().watchers === 2, 5_000, 'the resubscription');
    const final = await service.tracker.markComplete(a, 0);
    const next = await service.tracker.updateProgress(b, { message: 'b3' });
    await until(() => client.has(a, final.version) && client.has(b, next.version), 5_000, 'the last states');
    expect(client.received.filter((r) => r.bookId === a).map((r) => r.type)).toEqual(['progress', 'patch', 'progress']);
    expect(client.received.find((r) => r.bookId === a && r.state.version === final.version)?.state).toStrictEqual(final);
  });

  it('refuses another delta format', async () => {
    const client = await connect();
    const errors: string[] = [];
    client.ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as { type: string; error?: { code: string } };
      if (m.type === 'error') errors.push(m.error!.code);
    });
    client.send({ type: 'subscribe', books: [bookId('ws-delta')], delta: 'fossil' });
    await until(() => errors.length === 1, 5_000, 'the error');
    expect(errors).toEqual(['invalid_message']);
  });
});
