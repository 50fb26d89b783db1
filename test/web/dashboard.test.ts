import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { launchChromium } from '../support/browser.js';
import { startServer } from '../support/service.js';

const ARTIFACTS = 'test/artifacts';
const STEPS = ['Planning', 'Research', 'Outline', 'Structure', 'Chapters', 'Proofreading', 'Complete'];

let browser: Browser;
let service: Service;
let page: Page;
let dialogs: string[];

beforeAll(async () => {
  browser = await launchChromium();
  mkdirSync(ARTIFACTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
});

beforeEach(async () => {
  dialogs = [];
  page = await browser.newPage();
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
});
afterEach(async () => {
  await page?.close();
  await service?.close();
});

/** Records every value the first progress bar and step cell show, from inside the page. */
async function recordListRow(p: Page): Promise<void> {
  await p.evaluate(() => {
    const seen: Array<{ value: number; step: string }> = [];
    (window as unknown as { seen: typeof seen }).seen = seen;
    const record = () => {
      const row = document.querySelector('tbody tr');
      const bar = row?.querySelector('[role=progressbar]');
      if (!row || !bar) return;
      const step = row.children[2]?.textContent ?? '';
      const value = Number(bar.getAttribute('aria-valuenow'));
      const last = seen.at(-1);
      if (!last || last.value !== value || last.step !== step) seen.push({ value, step });
    };
    new MutationObserver(record).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  });
}

describe('dashboard in Chromium', () => {
  it('starts a demo book from the list page and shows its bar reach 100 % with the steps in order', async () => {
    service = await startServer({ DEMO_STEP_MS: '40' });
    await page.goto(service.url);
    await page.getByText('Live').waitFor({ timeout: 10_000 });
    await recordListRow(page);
    await page.getByLabel('Title').fill('Browser Book');
    await page.getByLabel('Chapters').fill('3');
    await page.getByLabel('Sections per chapter').fill('2');
    await page.getByRole('button', { name: 'Start generation' }).click();

    const bar = page.getByRole('progressbar', { name: 'Progress of Browser Book' });
    await expect.poll(() => bar.getAttribute('aria-valuenow'), { timeout: 20_000 }).toBe('100');
    const seen = await page.evaluate(() => (window as unknown as { seen: Array<{ value: number; step: string }> }).seen);
    const values = seen.map((s) => s.value);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    const steps = [...new Set(seen.map((s) => s.step).filter((s) => s !== ''))];
    expect(steps).toEqual(STEPS.filter((s) => steps.includes(s)));
    expect(steps.at(-1)).toBe('Complete');
    expect(steps.length).toBeGreaterThanOrEqual(3);
    await expect.poll(() => page.locator('tbody tr').first().textContent()).toContain('✓ Complete');
  });

  it('follows a book by polling when SSE is blocked, and shows chapters as they are written', async () => {
    service = await startServer({ DEMO_STEP_MS: '700' });
    await page.route('**/stream**', (route) => route.abort());
    const created = await fetch(`${service.url}/api/books`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ title: 'Polled Book', chapters: 3, sectionsPerChapter: 2 }),
    });
    const { data } = (await created.json()) as { data: { bookId: string } };
    await page.goto(`${service.url}/book/${data.bookId}`);

    await page.getByText('Polling every 3 s').waitFor({ timeout: 15_000 });
    const bar = page.getByRole('progressbar', { name: 'Book progress' });
    const values = new Set<string>();
    await expect
      .poll(
        async () => {
          values.add((await bar.getAttribute('aria-valuenow')) ?? '');
          return values.size;
        },
        { timeout: 20_000, interval: 200 },
      )
      .toBeGreaterThanOrEqual(2);
    await page.screenshot({ path: `${ARTIFACTS}/book-page.png`, fullPage: true });
    await expect.poll(() => bar.getAttribute('aria-valuenow'), { timeout: 40_000 }).toBe('100');
    await expect.poll(() => page.locator('article.chapter').count(), { timeout: 10_000 }).toBe(3);
    expect(await page.locator('#steps li[data-state="done"]').count()).toBe(STEPS.length);
    expect(await page.locator('#connection').textContent()).toBe('Finished');
  });

  it('renders text from the server as text, never as HTML', async () => {
    service = await startServer();
    const attack = '<img src=x onerror=alert(1)>';
    await fetch(`${service.url}/api/ai/progress/xss-book`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ status: 'GENERATING', message: attack }),
    });
    await page.goto(`${service.url}/book/xss-book`);
    await expect.poll(() => page.locator('#message').textContent(), { timeout: 10_000 }).toBe(attack);
    expect(await page.locator('#message img').count()).toBe(0);
    await fetch(`${service.url}/api/ai/progress/xss-book`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ status: 'ERROR', error: attack }),
    });
    await expect.poll(() => page.locator('#error').textContent(), { timeout: 10_000 }).toBe(`Generation failed: ${attack}`);
    expect(await page.locator('img').count()).toBe(0);
    expect(dialogs).toEqual([]);
  });
});
