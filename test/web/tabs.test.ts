import { build } from 'esbuild';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { bookId } from '../server/http.js';
import { launchChromium } from '../support/browser.js';
import { startServer } from '../support/service.js';
import { until } from '../support/wait.js';

type Tab = { version: number; versions: number[]; connection: string; transport: string; calls: number; kept: () => number };
const TABS = 8;

let browser: Browser;
let service: Service;
let context: BrowserContext;
let appJs: string;
let pagePolicy: string;
let violations: string[];
let streamUrls: string[];

beforeAll(async () => {
  const out = await build({ entryPoints: ['test/web/apps/tabs-app.ts'], bundle: true, format: 'esm', write: false, logLevel: 'silent' });
  appJs = out.outputFiles[0]?.text ?? '';
  browser = await launchChromium();
  service = await startServer();
  // The tabs run under the dashboard's own policy, so the shared worker must pass it.
  pagePolicy = (await fetch(`${service.url}/`)).headers.get('content-security-policy') ?? '';
  expect(pagePolicy).toContain("worker-src 'self'");
});
afterAll(async () => {
  await browser?.close();
  await service?.close();
});
beforeEach(async () => {
  context = await browser.newContext();
  violations = [];
  streamUrls = [];
  context.on('request', (r) => {
    if (r.url().includes('/stream')) streamUrls.push(r.url());
  });
  await context.route(`${service.url}/__tabs/**`, (route) =>
    route.request().url().includes('app.js')
      ? route.fulfill({ contentType: 'text/javascript', body: appJs })
      : route.fulfill({ contentType: 'text/html', headers: { 'content-security-policy': pagePolicy }, body: '<!doctype html><meta charset="utf-8"><base href="/"><script type="module" src="/__tabs/app.js"></script><body></body>' }),
  );
});
afterEach(async () => {
  await context?.close();
});

async function openTabs(books: string[], share: 'worker' | 'leader'): Promise<Page[]> {
  const pages: Page[] = [];
  for (const book of books) {
    const page = await context.newPage();
    page.on('console', (m) => {
      if (/Content.Security.Policy|Refused/i.test(m.text())) violations.push(m.text());
    });
    await page.goto(`${service.url}/__tabs/?book=${book}&share=${share}`);
    pages.push(page);
  }
  return pages;
}

const tabOf = (page: Page) => page.evaluate(() => (window as unknown as { tab: Tab }).tab);

async function publishAll(books: string[], updates: number): Promise<void> {
  await Promise.all(books.map(async (id) => {
    for (let i = 0; i < updates; i++) await service.tracker.updateProgress(id, { message: `update ${i}` });
  }));
}

describe('one connection per browser, in Chromium', () => {
  it('8 tabs watching 8 books share one server stream through the shared worker, and all see every final version', async () => {
    const books = Array.from({ length: TABS }, () => bookId('tabs-worker'));
    for (const id of books) await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'v1' });
    const before = service.streams.size;
    const pages = await openTabs(books, 'worker');
    await until(async () => (await Promise.all(pages.map(tabOf))).every((t) => t.version === 1 && t.connection === 'live' && t.transport === 'shared-worker'), 15_000, 'every tab live with its first state');
    await until(() => service.streams.size === before + 1, 5_000, 'one stream on the server');

    await publishAll(books, 10);
    for (const id of books) await service.tracker.markComplete(id, 0);
    await until(async () => (await Promise.all(pages.map(tabOf))).every((t) => t.version === 12), 15_000, 'every tab at its final version');
    for (const tab of await Promise.all(pages.map(tabOf))) expect(tab.versions).toEqual([...tab.versions].sort((a, b) => a - b));
    expect(service.streams.size).toBeLessThanOrEqual(before + 1);
    expect(violations).toEqual([]);
    // The worker's script is served under the pages' policy: it may connect to this server only.
    const worker = await fetch(`${service.url}/assets/shared-worker.js`);
    expect(worker.headers.get('content-security-policy')).toBe(pagePolicy);
  });

  it('with a leader tab: 8 tabs on one stream; when the leader closes another takes over within a second, resuming, losing nothing', async () => {
    const books = Array.from({ length: TABS }, () => bookId('tabs-leader'));
    for (const id of books) await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'v1' });
    const before = service.streams.size;
    const pages = await openTabs(books, 'leader');
    await until(async () => (await Promise.all(pages.map(tabOf))).every((t) => t.version === 1 && t.connection === 'live'), 15_000, 'every tab live with its first state');
    await until(() => service.streams.size === before + 1, 5_000, 'one stream on the server');
    const tabs = await Promise.all(pages.map(tabOf));
    expect(tabs.filter((t) => t.transport === 'leader-tab')).toHaveLength(1);
    expect(tabs.filter((t) => t.transport === 'follower-tab')).toHaveLength(TABS - 1);

    const leader = pages[tabs.findIndex((t) => t.transport === 'leader-tab')] as Page;
    const rest = pages.filter((p) => p !== leader);
    const restBooks = books.filter((_, i) => pages[i] !== leader);
    const streamsBefore = streamUrls.length;
    const closed = Date.now();
    await leader.close();
    // Published while no tab leads: the next leader's stream must resume and bring them.
    await publishAll(restBooks, 3);
    await until(async () => (await Promise.all(rest.map(tabOf))).some((t) => t.transport === 'leader-tab'), 5_000, 'a new leader');
    await until(() => streamUrls.length > streamsBefore, 5_000, 'the new leader to open its stream');
    const takeover = Date.now() - closed;
    expect(takeover).toBeLessThan(1_000 + 500); // the takeover's second, plus the test's own polling of 7 pages
    expect(streamUrls.slice(streamsBefore).every((u) => u.includes('lastEventId='))).toBe(true);

    await publishAll(restBooks, 5);
    for (const id of restBooks) await service.tracker.markComplete(id, 0);
    await until(async () => (await Promise.all(rest.map(tabOf))).every((t) => t.version === 10), 15_000, 'every remaining tab at its final version');
    await until(() => service.streams.size <= before + 1, 5_000, 'still one stream');
    expect(violations).toEqual([]);
  });

  it('a hidden tab with pauseWhenHidden renders nothing but keeps its state, and catches up in one call when shown', async () => {
    const id = bookId('tabs-hidden');
    await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'v1' });
    const page = await context.newPage();
    await page.goto(`${service.url}/__tabs/?book=${id}&share=worker&pause`);
    await until(async () => (await tabOf(page)).version === 1, 10_000, 'the first state');
    const setHidden = (hidden: boolean) =>
      page.evaluate((h) => {
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
        document.dispatchEvent(new Event('visibilitychange'));
      }, hidden);
    await setHidden(true);
    const calls = (await tabOf(page)).calls;
    for (let v = 2; v <= 20; v++) await service.tracker.updateProgress(id, { message: `v${v}` });
    await until(() => page.evaluate(() => (window as unknown as { tab: Tab }).tab.kept() === 20), 10_000, 'the hidden tab to keep its state current');
    expect((await tabOf(page)).calls).toBe(calls);
    expect((await tabOf(page)).version).toBe(1);
    await setHidden(false);
    await until(async () => (await tabOf(page)).version === 20, 5_000, 'the shown tab to catch up');
    expect((await tabOf(page)).calls).toBe(calls + 1);
  });
});
