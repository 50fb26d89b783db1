import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { startServer } from '../support/service.js';
import { until } from '../support/wait.js';
import { bookId } from './http.js';

const HEARTBEAT_MS = 200;
let service: Service;

beforeAll(async () => {
  service = await startServer({ HEARTBEAT_MS: String(HEARTBEAT_MS) });
});
afterAll(async () => {
  await service?.close();
});

/** A stream's raw text as it arrives. */
async function openRaw(url: string) {
  const controller = new AbortController();
  const res = await fetch(url, { signal: controller.signal });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const raw = { text: '', close: () => controller.abort() };
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        raw.text += decoder.decode(value, { stream: true });
      }
    } catch {
      // aborted by the test
    }
  })();
  return raw;
}

const HEARTBEAT_EVENT = `event: heartbeat\ndata: {"heartbeatMs":${HEARTBEAT_MS}}\n\n`;

describe('?heartbeats=1', () => {
  it('makes heartbeats events EventSource shows, the first right after the retry hint; without it they stay comments', async () => {
    const id = bookId('visible-heartbeats');
    await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'v1' });
    const visible = await openRaw(`${service.url}/api/ai/progress/${id}/stream?heartbeats=1`);
    const multi = await openRaw(`${service.url}/api/ai/stream?books=${id},other-${id}&heartbeats=1`);
    const plain = await openRaw(`${service.url}/api/ai/progress/${id}/stream`);
    try {
      await until(() => visible.text.split(HEARTBEAT_EVENT).length >= 4 && multi.text.split(HEARTBEAT_EVENT).length >= 3, 10_000, 'heartbeat events');
      await until(() => /^: heartbeat$/m.test(plain.text), 10_000, 'a heartbeat comment on the plain stream');
      expect(visible.text).toMatch(new RegExp(`^retry: \\d+\\n\\n${HEARTBEAT_EVENT.replace(/[{}]/g, '\\$&')}event: progress\\n`));
      expect(visible.text).not.toMatch(/^: heartbeat$/m);
      expect(plain.text).not.toContain('event: heartbeat');
    } finally {
      for (const s of [visible, multi, plain]) s.close();
    }
  });
});
