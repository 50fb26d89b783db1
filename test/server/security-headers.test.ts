import { connect } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { launchChromium } from '../support/browser.js';
import { startServer } from '../support/service.js';
import { withTimeout } from '../support/wait.js';

const API_POLICY = "default-src 'none'; frame-ancestors 'none'";

let service: Service;
let framed: Service;
beforeAll(async () => {
  [service, framed] = await Promise.all([startServer({ DEMO_STEP_MS: '30' }), startServer({ FRAME_ANCESTORS: 'self, https://app.example.com' })]);
});
afterAll(async () => {
  await Promise.all([service?.close(), framed?.close()]);
});

function expectApiHeaders(headers: Headers, what: string): void {
  expect(headers.get('content-security-policy'), what).toBe(API_POLICY);
  expect(headers.get('x-content-type-options'), what).toBe('nosniff');
  expect(headers.get('referrer-policy'), what).toBe('no-referrer');
  expect(headers.get('cross-origin-resource-policy'), what).toBe('cross-origin');
}

/** The raw head of an answer Node writes on a bare socket (a refused upgrade). */
async function rawHead(request: string): Promise<string> {
  const socket = connect(service.port, '127.0.0.1');
  let answer = '';
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
  socket.write(request);
  await withTimeout(new Promise((resolve) => socket.on('close', resolve)), 10_000, 'the server to answer and close');
  return answer.split('\r\n\r\n')[0] ?? '';
}

describe('security headers', () => {
  it('are on every API answer: Hono routes, the poll fast path, streams, and refusals written outside Hono', async () => {
    await service.tracker.updateProgress('headers-book', { message: 'hello' });
    const url = (path: string) => `${service.url}${path}`;
    const answers: Array<[string, Response]> = [
      ['a Hono route', await fetch(url('/api/books'))],
      ['a poll', await fetch(url('/api/ai/progress/headers-book'))],
      ['a poll (fast path, once followed)', await fetch(url('/api/ai/progress/headers-book'))],
      ['a 304', await fetch(url('/api/ai/progress/headers-book'), { headers: { 'If-None-Match': '"1"' } })],
      ['a 404', await fetch(url('/api/nothing-here'))],
      ['a dot segment refused before Hono', await fetch(url('/api/%2e%2e/metrics'))],
      ['/healthz', await fetch(url('/healthz'))],
    ];
    for (const [what, response] of answers) {
      expectApiHeaders(response.headers, what);
      await response.body?.cancel();
    }
    const stream = await fetch(url('/api/ai/progress/headers-book/stream'));
    expectApiHeaders(stream.headers, 'an SSE stream');
    await stream.body?.cancel();

    const refusedUpgrade = await rawHead('GET /api/ai/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nOrigin: https://evil.example\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    expect(refusedUpgrade).toMatch(/^HTTP\/1\.1 403 /);
    expect(refusedUpgrade).toContain(`content-security-policy: ${API_POLICY}`);
    expect(refusedUpgrade).toContain('x-content-type-options: nosniff');
  });

  it('give the pages a strict policy: this server only, no inline script, framed only by FRAME_ANCESTORS', async () => {
    for (const path of ['/', '/book/some-book']) {
      const page = await fetch(`${service.url}${path}`);
      const policy = page.headers.get('content-security-policy') ?? '';
      expect(policy).toContain("default-src 'self'");
      expect(policy).toContain("script-src 'self'");
      expect(policy).toContain("worker-src 'self'");
      expect(policy).toContain("connect-src 'self'");
      expect(policy).toContain("frame-ancestors 'self'");
      expect(policy).not.toMatch(/unsafe-inline|unsafe-eval/);
      expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    }
    const policy = (await fetch(`${framed.url}/`)).headers.get('content-security-policy') ?? '';
    expect(policy).toContain("frame-ancestors 'self' https://app.example.com");
  });
});

describe('the dashboard under its policy, in Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('starts a book, follows it on both pages, and reports no policy violation', async () => {
    const page = await browser.newPage();
    try {
      // Before any page script: every securitypolicyviolation event, not only console lines.
      await page.addInitScript(() => {
        const violations: string[] = [];
        (window as unknown as { violations: string[] }).violations = violations;
        document.addEventListener('securitypolicyviolation', (event) => violations.push(`${event.violatedDirective} ${event.blockedURI}`));
      });
      await page.goto(service.url);
      await page.getByRole('button', { name: /start/i }).first().click();
      await page.locator('tbody tr').first().waitFor({ timeout: 15_000 });
      await page.locator('tbody tr a').first().click();
      await page.getByText(/Complete/).first().waitFor({ timeout: 30_000 });
      expect(await page.evaluate(() => (window as unknown as { violations: string[] }).violations)).toEqual([]);
    } finally {
      await page.close();
    }
  }, 60_000);
});

describe('a malformed request on a connection whose response is being written', () => {
  it('closes the connection instead of writing a refusal into the stream', async () => {
    await service.tracker.updateProgress('pipelined-book', { message: 'streaming' });
    const socket = connect(service.port, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    socket.write('GET /api/ai/progress/pipelined-book/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await withTimeout(
      new Promise<void>((resolve) => socket.on('data', () => received.includes('"message":"streaming"') && resolve())),
      10_000,
      'the stream to deliver',
    );
    socket.write('\x00\x01garbage\r\n\r\n');
    await withTimeout(new Promise((resolve) => socket.on('close', resolve)), 10_000, 'the server to close the connection');
    expect(received).not.toContain('HTTP/1.1 400');
  });
});
