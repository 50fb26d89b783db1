import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { launchChromium } from '../support/browser.js';
import { startServer } from '../support/service.js';

let browser: Browser;
let service: Service;
let page: Page;
/** Every URL the page asked for: all must be under /progress/. */
let requested: string[];

beforeAll(async () => {
  browser = await launchChromium();
  service = await startServer({ BASE_PATH: '/progress', DEMO_STEP_MS: '40' });
});
afterAll(async () => {
  await browser?.close();
  await service?.close();
});
beforeEach(async () => {
  page = await browser.newPage();
  requested = [];
  page.on('request', (request) => requested.push(request.url()));
});
afterEach(async () => {
  await page?.close();
});

describe('the dashboard under BASE_PATH=/progress, in Chromium', () => {
  it('starts a book at /progress/, follows it live to 100 %, and links to its page under the prefix', async () => {
    const origin = new URL(service.url).origin;
    await page.goto(`${origin}/progress`); // redirected to /progress/
    expect(page.url()).toBe(`${origin}/progress/`);
    await page.getByText('Live').waitFor({ timeout: 10_000 });
    await page.getByLabel('Title').fill('Prefixed Book');
    await page.getByLabel('Chapters').fill('2');
    await page.getByLabel('Sections per chapter').fill('1');
    await page.getByRole('button', { name: 'Start generation' }).click();
    const bar = page.getByRole('progressbar', { name: 'Progress of Prefixed Book' });
    await expect.poll(() => bar.getAttribute('aria-valuenow'), { timeout: 20_000 }).toBe('100');

    await page.getByRole('link', { name: 'Prefixed Book' }).click();
    await page.waitForURL(/\/progress\/book\/bk_/);
    await expect.poll(() => page.locator('article.chapter').count(), { timeout: 10_000 }).toBe(2);
    await expect.poll(() => page.locator('#connection').textContent(), { timeout: 10_000 }).toBe('Finished');
    await page.getByRole('link', { name: '← All books' }).click();
    await page.waitForURL(`${origin}/progress/`);

    const asked = requested.slice(1); // after the test's own goto of the bare prefix
    expect(asked.length).toBeGreaterThan(5);
    expect(asked.filter((url) => !url.startsWith(`${origin}/progress/`) && !url.startsWith('data:'))).toEqual([]);
  });

  it('falls back to polling under the prefix when SSE is blocked', async () => {
    await page.route('**/stream**', (route) => route.abort());
    const created = await fetch(`${service.url}/api/books`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ title: 'Polled under a prefix', chapters: 1, sectionsPerChapter: 1 }) });
    const { data } = (await created.json()) as { data: { bookId: string } };
    await page.goto(`${service.url}/book/${data.bookId}`);
    await expect.poll(() => page.getByRole('progressbar', { name: 'Book progress' }).getAttribute('aria-valuenow'), { timeout: 40_000 }).toBe('100');
    expect(requested.some((url) => url.includes(`/progress/api/ai/progress/${data.bookId}`) && !url.includes('/stream'))).toBe(true);
  });
});
