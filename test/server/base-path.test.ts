import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { Watch } from '../support/events.js';
import { startServer } from '../support/service.js';
import { tryWebSocket } from '../support/upgrade.js';
import { withTimeout } from '../support/wait.js';
import { bookId, expectError, published } from './http.js';

let service: Service;
let origin: string;

beforeAll(async () => {
  service = await startServer({ BASE_PATH: '/progress', DEMO_STEP_MS: '20' });
  origin = new URL(service.url).origin;
});
afterAll(async () => {
  await service?.close();
});

describe('BASE_PATH=/progress', () => {
  it('serves every route under the prefix, and nothing outside it', async () => {
    expect(service.url).toBe(`${origin}/progress`);
    expect((await fetch(`${origin}/progress/healthz`)).status).toBe(200);
    expect((await fetch(`${origin}/progress/metrics`)).status).toBe(200);
    for (const path of ['/healthz', '/api/ai/progress/x', '/', '/progressive/healthz']) await expectError(await fetch(`${origin}${path}`), 404, 'not_found');

    const id = bookId('base');
    await published(service.url, id, { message: 'under a prefix' });
    for (let i = 0; i < 2; i++) {
      // The second poll takes the fast path (the book is followed after the first).
      const res = await fetch(`${origin}/progress/api/ai/progress/${id}`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { data: { message: string } }).data.message).toBe('under a prefix');
    }
    const watch = new Watch(`${origin}/progress/api/ai/progress/${id}/stream`);
    try {
      await watch.version(1);
      await published(service.url, id, { message: 'live' });
      await watch.version(2);
    } finally {
      watch.close();
    }
  });

  it('redirects the bare prefix to the dashboard, whose links and scripts stay under it', async () => {
    const bare = await fetch(`${origin}/progress`, { redirect: 'manual' });
    expect(bare.status).toBe(308);
    expect(bare.headers.get('location')).toBe('/progress/');
    const page = await (await fetch(`${origin}/progress/`)).text();
    expect(page).toContain('<base href="/progress/" />');
    expect(page).not.toMatch(/(href|src)="\/(?!progress)/);
    expect((await fetch(`${origin}/progress/assets/dashboard.js`)).status).toBe(200);
    expect((await fetch(`${origin}/progress/book/some-book`)).status).toBe(200);
  });

  it('gives the Location of a new book under the prefix', async () => {
    const res = await fetch(`${service.url}/api/books`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Prefixed', chapters: 1, sectionsPerChapter: 1 }) });
    expect(res.status).toBe(201);
    const location = res.headers.get('location') ?? '';
    expect(location).toMatch(/^\/progress\/api\/books\/bk_/);
    expect((await fetch(`${origin}${location}`)).status).toBe(200);
  });

  it('takes WebSockets at /progress/api/ai/ws only', async () => {
    const result = await tryWebSocket(`${origin.replace('http', 'ws')}/progress/api/ai/ws`);
    expect(result.status).toBe(101);
    if (!('ws' in result)) return;
    const id = bookId('base-ws');
    const received = new Promise<string>((resolve) => result.ws.on('message', (data) => resolve(data.toString())));
    await published(service.url, id, { message: 'ws under a prefix' });
    result.ws.send(JSON.stringify({ type: 'subscribe', books: [id] }));
    expect(JSON.parse(await withTimeout(received, 5_000, 'the first WebSocket message')).data.message).toBe('ws under a prefix');
    result.ws.terminate();
    expect((await tryWebSocket(`${origin.replace('http', 'ws')}/api/ai/ws`)).status).toBe(404);
  });
});
