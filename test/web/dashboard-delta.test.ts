import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProgressUpdate } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { launchChromium } from '../support/browser.js';
import { startServer } from '../support/service.js';

let browser: Browser;
let service: Service;
let page: Page;

beforeAll(async () => {
  browser = await launchChromium();
  service = await startServer();
  page = await browser.newPage();
});
afterAll(async () => {
  await page?.close();
  await browser?.close();
  await service?.close();
});

describe('dashboard in Chromium, on merge patches', () => {
  it('asks for deltas and shows every state of a book, then its final one exactly', async () => {
    const streams: string[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/stream')) streams.push(request.url());
    });
    await page.goto(service.url);
    await page.getByText('Live').waitFor({ timeout: 10_000 });
    expect(streams.some((url) => url.includes('delta=merge-patch'))).toBe(true);

    const id = `dash-delta-${Date.now()}`;
    const row = page.locator('tbody tr', { hasText: id });
    const message = row.locator('td.message');
    const bar = row.getByRole('progressbar');
    await service.tracker.updateProgress(id, { status: 'GENERATING', generationStep: 'RESEARCH', totalChapters: 4, message: 'start' });
    await expect.poll(() => message.textContent(), { timeout: 10_000 }).toBe('start');
    // One at a time: the page shows each state (a patch of the one before) before the next comes.
    const steps: ProgressUpdate[] = [
      { message: 'outline', generationStep: 'OUTLINE', overallProgress: 10 },
      { message: 'chapter 1', generationStep: 'CHAPTERS', currentChapter: 1, overallProgress: 30 },
      { message: 'chapter 2', currentChapter: 2, overallProgress: 50 },
      { message: 'chapter 3', currentChapter: 3, overallProgress: 70 },
    ];
    for (const update of steps) {
      const state = await service.tracker.updateProgress(id, update);
      await expect.poll(() => message.textContent(), { timeout: 10_000 }).toBe(update.message);
      await expect.poll(() => bar.getAttribute('aria-valuenow'), { timeout: 10_000 }).toBe(String(Math.round(state.overallProgress)));
    }
    // Then a burst, which the stream may coalesce: the page ends on the last state.
    for (let i = 0; i < 5; i++) await service.tracker.updateProgress(id, { message: `burst ${i}`, overallProgress: 80 + i });
    await expect.poll(() => message.textContent(), { timeout: 10_000 }).toBe('burst 4');
    await service.tracker.markComplete(id, 4);
    await expect.poll(() => row.textContent(), { timeout: 10_000 }).toContain('✓ Complete');
    expect(await bar.getAttribute('aria-valuenow')).toBe('100');
  });
});
