import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { RawStream, bookId, progressUrl } from '../server/http.js';
import { launchChromium } from '../support/browser.js';
import { FaultLog } from '../../src/fault-log.js';
import { silentLog, startServer } from '../support/service.js';
import { TEST_SECRET, bearer, mintToken } from '../support/tokens.js';

// The operator view in Chromium: who may see it, and its figures following the server live.
const ARTIFACTS = process.env.SCREENSHOT_DIR ?? 'test/artifacts';

let browser: Browser;
let guarded: Service;
let open: Service;
let alice: string;
let admin: string;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await launchChromium();
  [guarded, open] = await Promise.all([startServer({ AUTH_JWT_SECRET: TEST_SECRET, DEMO_STEP_MS: '150' }), startServer({})]);
  alice = await mintToken({ sub: 'alice', tenant: 'acme', scope: 'progress:read progress:write books:write' });
  admin = await mintToken({ sub: 'operator', tenant: 'ops', scope: 'admin' });
});
afterAll(async () => {
  await browser?.close();
  await Promise.all([guarded?.close(), open?.close()]);
});

/** A page that records every CSP violation from before its first script. */
async function newPage(width = 1280): Promise<Page> {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  await page.addInitScript(() => {
    const violations: string[] = [];
    (window as unknown as { violations: string[] }).violations = violations;
    document.addEventListener('securitypolicyviolation', (event) => violations.push(`${event.violatedDirective} ${event.blockedURI}`));
  });
  return page;
}

async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/admin`);
  await page.locator('#sign-in input[name=token]').waitFor();
  await page.fill('#sign-in input[name=token]', token);
  await page.click('#sign-in button[type=submit]');
}

const stat = (page: Page, name: string) => page.locator(`#panels [data-stat="${name}"]`);
/** Waits until the figure `name` reads `value` (the page asks the server every second). */
const statIs = (page: Page, name: string, value: string) =>
  page.waitForFunction(([n, v]) => document.querySelector(`#panels [data-stat="${n}"]`)?.textContent === v, [name, value], { timeout: 10_000 });

describe('/admin in Chromium', () => {
  it('asks for a token, and shows nothing but "needs admin" to a token without the admin scope', async () => {
    const page = await newPage();
    try {
      await signIn(page, guarded.url, alice);
      await page.locator('#admin-state[data-state=forbidden]').waitFor();
      expect(await page.textContent('#admin-state')).toContain('admin scope');
      expect(await page.locator('#panels').isHidden()).toBe(true);
      expect(await page.locator('#panels dd').count()).toBe(0);
    } finally {
      await page.close();
    }
  });

  it('a token refused (expired) asks again', async () => {
    const expired = await mintToken({ sub: 'operator', tenant: 'ops', scope: 'admin' }, { ttlSeconds: -10 });
    const page = await newPage();
    try {
      await signIn(page, guarded.url, expired);
      await page.locator('#connection[data-state=signed-out]').waitFor();
      expect(await page.textContent('#connection')).toBe('Token refused');
      expect(await page.locator('#panels dd').count()).toBe(0);
    } finally {
      await page.close();
    }
  });

  it("follows the server live for an admin: a stream opens, a book is generated, and the figures change", async () => {
    const page = await newPage();
    const id = bookId('watched');
    const res = await fetch(progressUrl(guarded.url, id), { method: 'POST', headers: bearer(alice, { 'content-type': 'application/json' }), body: JSON.stringify({ message: 'x' }) });
    expect(res.status).toBe(200);
    let stream: RawStream | null = null;
    try {
      await signIn(page, guarded.url, admin);
      await page.locator('#panels').waitFor();
      await statIs(page, 'broker', 'ok');
      await statIs(page, 'database', 'ok');
      await statIs(page, 'sse', '0');
      await statIs(page, 'running', '0');

      stream = await RawStream.open(`${progressUrl(guarded.url, id)}/stream`, bearer(alice));
      await stream.until((t) => t.includes('event: progress'));
      await statIs(page, 'sse', '1');
      await statIs(page, 'books-watched', '1');
      await page.locator('#tenants tbody tr', { hasText: 'acme' }).waitFor();
      await page.locator('#books-watched tbody tr', { hasText: id }).waitFor();

      const started = await fetch(`${guarded.url}/api/books`, { method: 'POST', headers: bearer(alice, { 'content-type': 'application/json' }), body: JSON.stringify({ title: 'Seen from the operator view', chapters: 3, sectionsPerChapter: 2 }) });
      const book = ((await started.json()) as { data: { bookId: string } }).data.bookId;
      await statIs(page, 'running', '1');
      const row = page.locator('#runs tbody tr', { hasText: book });
      await row.waitFor();
      expect(await row.textContent()).toContain('acme');
      expect(await row.textContent()).toMatch(/s left/);
      // A fault the server logs shows in the fault log, newest first.
      FaultLog.of(silentLog).report('generation_retry', 'a generator call failed; retrying', { bookId: book });
      await page.locator('#faults li', { hasText: 'generation_retry: a generator call failed; retrying' }).waitFor();
      await page.screenshot({ path: `${ARTIFACTS}/admin-live-1280.png`, fullPage: true });

      await guarded.orchestrator.settled(book);
      await statIs(page, 'running', '0');
      await row.waitFor({ state: 'detached', timeout: 10_000 });
      stream.close();
      await statIs(page, 'sse', '0');
      expect(await page.evaluate(() => (window as unknown as { violations: string[] }).violations)).toEqual([]);
    } finally {
      stream?.close();
      await page.close();
    }
  });

  it('is open without authentication, as /metrics is, and fits a phone', async () => {
    const page = await newPage(390);
    try {
      await page.goto(`${open.url}/admin`);
      await page.locator('#panels').waitFor();
      await statIs(page, 'ready', 'yes');
      expect(await page.locator('#sign-in').isHidden()).toBe(true);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      await page.screenshot({ path: `${ARTIFACTS}/admin-open-390.png`, fullPage: true });
      expect(await page.evaluate(() => (window as unknown as { violations: string[] }).violations)).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
