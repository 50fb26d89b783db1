import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/browser.js';
import { serverForFile } from '../support/service.js';
import { bookId } from '../server/http.js';

const server = serverForFile({ DEMO_STEP_MS: '20' });
let browser: Browser;
let page: Page;

beforeAll(async () => {
  browser = await launchChromium();
  page = await browser.newPage();
});
afterAll(async () => {
  await page?.close();
  await browser?.close();
});

async function append(id: string, chapter: number, section: number, text: string): Promise<void> {
  const offset = (await server.service.texts.read(id, chapter, section))?.length ?? 0;
  const result = await server.service.texts.append(id, { chapter, section, offset }, text);
  if (!result.ok) throw new Error(JSON.stringify(result));
}

const liveText = (p: Page) => p.locator('#live-text').textContent();

describe('the book page in Chromium shows the chapter being written', () => {
  it('live, as text (never HTML); reloaded mid-chapter it shows at once what was there, then more', async () => {
    const id = bookId('page-text');
    await server.service.tracker.updateProgress(id, { status: 'GENERATING', message: 'Writing', totalChapters: 3, currentChapter: 2, totalSections: 2, currentSection: 1 });
    await server.service.texts.beginSection(id, 2, 1);
    await page.goto(`${server.url}/book/${id}`);
    await page.getByText('Live').waitFor({ timeout: 10_000 });
    const attack = '<img src=x onerror="window.pwned=1">';
    for (const word of ['Once ', 'upon ', 'a ', 'time ', attack]) await append(id, 2, 1, word);
    const before = `Once upon a time ${attack}`;
    await expect.poll(() => liveText(page), { timeout: 5_000 }).toBe(before);
    expect(await page.locator('#live-chapter').textContent()).toBe('Chapter 2');
    expect(await page.locator('#live-text img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();

    // Every text the live view shows after the reload, recorded from the page's first moment.
    await page.addInitScript(() => {
      const shown: string[] = [];
      (window as unknown as { shown: string[] }).shown = shown;
      new MutationObserver(() => {
        const text = document.querySelector('#live-text')?.textContent ?? '';
        if (text !== '' && shown.at(-1) !== text) shown.push(text);
      }).observe(document, { subtree: true, childList: true, characterData: true });
    });
    await page.reload();
    await expect.poll(() => liveText(page), { timeout: 5_000 }).toBe(before);
    // The merged frame at once: no replayed typing, no partial text first.
    expect(await page.evaluate(() => (window as unknown as { shown: string[] }).shown)).toEqual([before]);

    await server.service.texts.beginSection(id, 2, 2);
    await append(id, 2, 1, ' The end of section one.');
    await append(id, 2, 2, 'Section two begins.');
    await expect.poll(() => page.locator('#live-text p[data-section="2"]').textContent(), { timeout: 5_000 }).toBe('Section two begins.');
    expect(await page.locator('#live-text p[data-section="1"]').textContent()).toBe(`${before} The end of section one.`);
  });

  it('lists the saved chapters below, collapsed, each expanding to its text', async () => {
    const res = await fetch(`${server.url}/api/books`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ title: 'Collapsed chapters', chapters: 2, sectionsPerChapter: 1 }) });
    expect(res.status).toBe(201);
    const { data } = (await res.json()) as { data: { bookId: string } };
    await page.goto(`${server.url}/book/${data.bookId}`);
    await expect.poll(() => page.locator('article.chapter details').count(), { timeout: 15_000 }).toBe(2);
    const first = page.locator('article.chapter details').first();
    expect(await first.getAttribute('open')).toBeNull();
    expect(await first.locator('p').isVisible()).toBe(false);
    await first.locator('summary').click();
    expect(await first.locator('p').isVisible()).toBe(true);
    expect((await first.locator('p').textContent())?.length).toBeGreaterThan(0);
  });
});
