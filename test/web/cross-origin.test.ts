import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { launchChromium } from '../support/browser.js';
import { startServer } from '../support/service.js';
import { bookId, published } from '../server/http.js';

/** A host app's page: any HTML of its own origin, from which scripts call the progress server. */
async function hostPage(): Promise<{ server: Server; origin: string }> {
  const server = createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><title>host app</title>'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

let browser: Browser;
let allowed: { server: Server; origin: string };
let other: { server: Server; origin: string };
let service: Service;

beforeAll(async () => {
  [browser, allowed, other] = await Promise.all([launchChromium(), hostPage(), hostPage()]);
  service = await startServer({ CORS_ORIGINS: allowed.origin });
});
afterAll(async () => {
  await browser?.close();
  await service?.close();
  for (const host of [allowed, other]) await new Promise((resolve) => host?.server.close(resolve));
});

interface Reads {
  poll: { status: number; etag: string | null; source: string | null; message: string } | string;
  notModified: number | string;
  post: number | string;
  eventSource: string;
  webSocket: string;
}

/** From inside a page on `origin`: every way the browser reads progress, each with its outcome or its failure. */
async function readFrom(page: Page, origin: string, server: string, id: string): Promise<Reads> {
  await page.goto(`${origin}/`);
  return page.evaluate(
    async ({ server, id }) => {
      const failed = (error: unknown) => `failed: ${(error as Error).name}`;
      const url = `${server}/api/ai/progress/${id}`;
      const poll = await fetch(url, { credentials: 'include' }).then(
        async (res) => ({ status: res.status, etag: res.headers.get('ETag'), source: res.headers.get('X-Progress-Source'), message: ((await res.json()) as { data: { message: string } }).data.message }),
        failed,
      );
      const etag = typeof poll === 'string' ? '"1"' : (poll.etag ?? '');
      // A non-safelisted request header: the browser sends a preflight first.
      const notModified = await fetch(url, { credentials: 'include', headers: { 'If-None-Match': etag } }).then((res) => res.status, failed);
      const post = await fetch(`${server}/api/ai/progress/${id}-posted`, {
        method: 'POST',
        credentials: 'include',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ message: 'posted from the host page' }),
      }).then((res) => res.status, failed);
      const eventSource = await new Promise<string>((resolve) => {
        const es = new EventSource(`${url}/stream`, { withCredentials: true });
        const timer = setTimeout(() => resolve('timed out'), 5_000);
        es.addEventListener('progress', (event) => {
          clearTimeout(timer);
          es.close();
          resolve(`event: ${(JSON.parse((event as MessageEvent<string>).data) as { message: string }).message}`);
        });
        es.onerror = () => {
          clearTimeout(timer);
          es.close();
          resolve('failed: error event');
        };
      });
      const webSocket = await new Promise<string>((resolve) => {
        const ws = new WebSocket(`${server.replace('http', 'ws')}/api/ai/ws`);
        const timer = setTimeout(() => resolve('timed out'), 5_000);
        ws.onopen = () => ws.send(JSON.stringify({ type: 'subscribe', books: [id] }));
        ws.onmessage = (event) => {
          clearTimeout(timer);
          ws.close();
          resolve(`message: ${(JSON.parse(event.data as string) as { data: { message: string } }).data.message}`);
        };
        ws.onclose = (event) => {
          clearTimeout(timer);
          resolve(`failed: closed ${event.code}`);
        };
      });
      return { poll, notModified, post, eventSource, webSocket };
    },
    { server, id },
  );
}

describe('a page on another origin, in Chromium', () => {
  it('reads polls, SSE with credentials and the WebSocket when its origin is in CORS_ORIGINS', async () => {
    const context = await browser.newContext();
    // The host app's login cookie: credentialed requests carry it, and are readable only with Allow-Credentials.
    await context.addCookies([{ name: 'booksai_token', value: 'token-of-the-user', domain: '127.0.0.1', path: '/', httpOnly: true, sameSite: 'Lax' }]);
    const page = await context.newPage();
    const id = bookId('cross-origin');
    const state = await published(service.url, id, { message: 'readable across origins' });
    try {
      const reads = await readFrom(page, allowed.origin, service.url, id);
      expect(reads.poll).toEqual({ status: 200, etag: `"${state.version}"`, source: expect.any(String), message: 'readable across origins' });
      expect(reads.notModified).toBe(304);
      expect(reads.post).toBe(200);
      expect(reads.eventSource).toBe('event: readable across origins');
      expect(reads.webSocket).toBe('message: readable across origins');
    } finally {
      await context.close();
    }
  });

  it('reads nothing, and has its WebSocket refused, when its origin is not listed', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const id = bookId('cross-origin-refused');
    await published(service.url, id, { message: 'not for this page' });
    try {
      const reads = await readFrom(page, other.origin, service.url, id);
      expect(reads.poll).toBe('failed: TypeError');
      expect(reads.notModified).toBe('failed: TypeError');
      expect(reads.post).toBe('failed: TypeError');
      expect(reads.eventSource).toBe('failed: error event');
      expect(reads.webSocket).toMatch(/^failed: closed 1006$/);
    } finally {
      await context.close();
    }
    // The refused POST never reached the tracker: its preflight failed first.
    expect((await fetch(`${service.url}/api/ai/progress/${id}-posted`)).status).toBe(404);
  });
});
