import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { launchChromium } from '../support/browser.js';
import { startServer } from '../support/service.js';
import { TEST_SECRET } from '../support/tokens.js';
import { bookId } from '../server/http.js';

// Each state a user meets, at a phone's 390 px and at 1280 px: it shows what it should, nothing
// overflows sideways, and a screenshot is kept in test/artifacts (looked at by whoever changes the pages).
const ARTIFACTS = process.env.SCREENSHOT_DIR ?? 'test/artifacts';
const WIDTHS = [390, 1280] as const;

let browser: Browser;
let open: Service;
let guarded: Service;

const publish = async (id: string, body: Record<string, unknown>) => {
  const res = await fetch(`${open.url}/api/ai/progress/${id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
};

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await launchChromium();
  [open, guarded] = await Promise.all([startServer({ DEMO_STEP_MS: '3000', STALE_AFTER_SECONDS: '1' }), startServer({ AUTH_JWT_SECRET: TEST_SECRET })]);
});
afterAll(async () => {
  await browser?.close();
  await Promise.all([open?.close(), guarded?.close()]);
});

/** Opens `url` at each width, waits for `ready`, checks there is no sideways scroll, and keeps a screenshot. */
async function atEachWidth(name: string, url: string, ready: (page: Page) => Promise<void>, before: (page: Page) => Promise<void> = async () => {}): Promise<void> {
  for (const width of WIDTHS) {
    const page = await browser.newPage({ viewport: { width, height: 860 } });
    try {
      await before(page);
      await page.goto(url);
      await ready(page);
      expect(await page.evaluate(() => document.documentElement.scrollWidth), `${name} at ${width} px scrolls sideways`).toBeLessThanOrEqual(width);
      await page.screenshot({ path: `${ARTIFACTS}/${name}-${width}.png`, fullPage: true });
    } finally {
      await page.close();
    }
  }
}

describe('dashboard states at 390 px and 1280 px', () => {
  it('signed out', async () => {
    await atEachWidth('signed-out', `${guarded.url}/`, (page) => page.locator('#sign-in input').waitFor());
  });

  it('loading, then empty', async () => {
    let release: () => void = () => {};
    await atEachWidth('loading', `${open.url}/`, (page) => page.locator('#list-state[data-state=loading]').waitFor(), async (page) => {
      const held = new Promise<void>((resolve) => (release = resolve));
      await page.route('**/api/books', async (route) => {
        await held;
        await route.continue().catch(() => {});
      });
    });
    release();
    await atEachWidth('empty', `${open.url}/`, async (page) => {
      await page.locator('#list-state[data-state=empty]', { hasText: 'No books yet' }).waitFor();
      expect(await page.locator('#books').isVisible()).toBe(false);
    });
  });

  it('the books could not be loaded', async () => {
    await atEachWidth('error', `${open.url}/`, (page) => page.locator('#list-state[data-state=error]', { hasText: 'could not be loaded' }).waitFor(), async (page) => {
      await page.route('**/api/books', (route) => route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ success: false, error: { code: 'unavailable', message: 'the database is not answering' } }) }));
    });
  });

  it('a running book, a finished one, a failed one, a stalled one, and the list', async () => {
    const res = await fetch(`${open.url}/api/books`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'A Field Guide to Progress Bars', chapters: 5, sectionsPerChapter: 3 }) });
    const running = ((await res.json()) as { data: { bookId: string } }).data.bookId;
    const finished = bookId('finished');
    for (const step of ['RESEARCH', 'OUTLINE', 'STRUCTURE', 'CHAPTERS', 'PROOFREADING']) await publish(finished, { status: 'GENERATING', generationStep: step, title: 'Finished by an outside worker', totalChapters: 2 });
    await publish(finished, { status: 'COMPLETE', generationStep: 'COMPLETE', overallProgress: 100, message: 'Book generation complete' });
    const failed = bookId('failed');
    await publish(failed, { status: 'GENERATING', generationStep: 'CHAPTERS', totalChapters: 3, currentChapter: 2, totalSections: 3, currentSection: 1, overallProgress: 41 });
    await publish(failed, { status: 'ERROR', error: 'the model provider answered 503 three times', message: 'Generation failed' });
    const stalled = bookId('stalled');
    await publish(stalled, { status: 'GENERATING', generationStep: 'OUTLINE', overallProgress: 12, message: 'Outlining', title: 'A book whose worker went quiet' });

    await atEachWidth('running', `${open.url}/book/${running}`, (page) => page.locator('#status', { hasText: /Planning|Generating/ }).waitFor());
    await atEachWidth('finished', `${open.url}/book/${finished}`, (page) => page.locator('#status', { hasText: 'Complete' }).waitFor());
    await atEachWidth('failed', `${open.url}/book/${failed}`, (page) => page.locator('#error', { hasText: 'answered 503' }).waitFor());
    await atEachWidth('stalled', `${open.url}/book/${stalled}`, (page) => page.locator('#stalled').waitFor({ timeout: 5_000 }));
    await atEachWidth('not-found', `${open.url}/book/does-not-exist`, (page) => page.locator('#not-found').waitFor());
    await atEachWidth('list', `${open.url}/`, async (page) => {
      await page.locator('tbody tr').nth(3).waitFor();
      await page.locator(`tr[data-book-id="${stalled}"] .stalled`).waitFor({ timeout: 5_000 });
    });
  }, 90_000);
});
