import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TimelineRecorder } from '../../src/analytics/recorder.js';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { openDatabase } from '../../src/store/database.js';
import type { DatabaseHandle } from '../../src/store/database.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { launchChromium } from '../support/browser.js';
import { startTestService } from '../support/service.js';
import { bookId } from '../server/http.js';

// The dashboard without authentication, as a user finds it: books of outside workers, stalled
// books, a missing book, step times recorded before the page opened, Cancel and Retry.
let browser: Browser;
let database: TestDatabase;
let handle: DatabaseHandle;
let service: Service;

const publish = async (id: string, body: Record<string, unknown>): Promise<BookProgress> => {
  const res = await fetch(`${service.url}/api/ai/progress/${id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = (await res.json()) as { data: BookProgress };
  expect(res.status, JSON.stringify(json)).toBe(200);
  return json.data;
};

async function withPage(run: (page: Page) => Promise<void>, width = 1280): Promise<void> {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  try {
    await run(page);
  } finally {
    await page.close();
  }
}

beforeAll(async () => {
  browser = await launchChromium();
  database = await createTestDatabase();
  // Long steps: a demo book is still running when the test clicks Cancel.
  service = await startTestService({ DATABASE_URL: database.url, STALE_AFTER_SECONDS: '8', DEMO_STEP_MS: '300' });
  handle = await openDatabase(database.url, '', 5_000);
});
afterAll(async () => {
  await browser?.close();
  await service?.close();
  await handle?.close();
  await database?.drop();
});

describe('books of outside workers', () => {
  it('shows the id where there is no title, with no dangling separator', async () => {
    const id = bookId('untitled');
    await publish(id, { status: 'GENERATING', generationStep: 'CHAPTERS', totalChapters: 3, currentChapter: 1, totalSections: 3, currentSection: 0, overallProgress: 32 });
    await withPage(async (page) => {
      await page.goto(`${service.url}/book/${id}`);
      await page.locator('#percent', { hasText: '32 %' }).waitFor();
      expect(await page.textContent('#title')).toBe(id);
      expect(await page.title()).toBe(`${id} · booksai-progress`);
      expect(await page.textContent('#summary')).toBe('◑ Generating · 32 %');
      expect(await page.textContent('#counters')).toBe('Chapter 1 of 3');
      await publish(id, { status: 'ERROR', error: 'the worker crashed', overallProgress: 41 });
      await page.locator('#status', { hasText: 'Failed' }).waitFor();
      expect(await page.textContent('#summary')).toBe('✕ Failed · 41 %');
      // No run of ours generates it: nothing to cancel or retry.
      expect(await page.locator('button[data-action]:visible').count()).toBe(0);

      await page.goto(service.url);
      const link = page.locator(`tr[data-book-id="${id}"] td.title a`);
      await link.waitFor();
      expect(await link.textContent()).toBe(id);
    });
  });

  it('shows the title a worker publishes', async () => {
    const id = bookId('titled');
    await publish(id, { status: 'GENERATING', generationStep: 'RESEARCH', title: 'Named by the worker' });
    await withPage(async (page) => {
      await page.goto(`${service.url}/book/${id}`);
      await page.locator('#title', { hasText: 'Named by the worker' }).waitFor();
      expect(await page.title()).toBe('Named by the worker · booksai-progress');
      await page.goto(service.url);
      await page.locator(`tr[data-book-id="${id}"] a`, { hasText: 'Named by the worker' }).waitFor();
    });
  });
});

describe('a book whose publisher went silent', () => {
  it('is marked stalled in the list and on its page, and no longer once it publishes again', async () => {
    const id = bookId('silent');
    await publish(id, { status: 'GENERATING', generationStep: 'CHAPTERS', title: 'Silent book', overallProgress: 10 });
    await withPage(async (page) => {
      await page.goto(`${service.url}/book/${id}`);
      // STALE_AFTER_SECONDS is 8: the page turns it stalled by itself, with no new state.
      await page.locator('#summary #stalled', { hasText: 'Stalled: no update for' }).waitFor({ timeout: 20_000 });
      expect(await page.textContent('#summary')).toMatch(/^◑ Generating · 10 % · ⚠ Stalled: no update for \d+ s$/);
      await publish(id, { overallProgress: 20 });
      await page.locator('#percent', { hasText: '20 %' }).waitFor();
      expect(await page.locator('#stalled').count()).toBe(0);

      await page.goto(service.url);
      await page.locator(`tr[data-book-id="${id}"][data-stalled] .stalled`).waitFor({ timeout: 20_000 });
    });
  });
});

describe('a book that does not exist', () => {
  it('says not found, and watches nothing', async () => {
    await withPage(async (page) => {
      await page.goto(`${service.url}/book/does-not-exist`);
      await page.locator('#not-found').waitFor();
      expect(await page.textContent('#title')).toBe('Book not found');
      expect(await page.textContent('#not-found')).toContain('does-not-exist');
      expect(await page.locator('#progress-heading').isVisible()).toBe(false);
      expect(await page.textContent('body')).not.toContain('Waiting for the first update');
      expect(await page.textContent('body')).not.toContain('Live');
    });
  });
});

describe('step times', () => {
  it('shows how long every step took, also the ones that ended before the page opened', async () => {
    const id = bookId('timed');
    const states: BookProgress[] = [];
    for (const step of ['RESEARCH', 'OUTLINE', 'STRUCTURE', 'CHAPTERS', 'PROOFREADING'] as const) states.push(await publish(id, { status: 'GENERATING', generationStep: step }));
    states.push(await publish(id, { status: 'COMPLETE', generationStep: 'COMPLETE', overallProgress: 100 }));
    await new TimelineRecorder(handle.db).record(states);
    await withPage(async (page) => {
      await page.goto(`${service.url}/book/${id}`);
      await page.locator('#steps li[data-step="PROOFREADING"] .took').waitFor();
      for (const step of ['RESEARCH', 'OUTLINE', 'STRUCTURE', 'CHAPTERS', 'PROOFREADING']) {
        expect(await page.textContent(`#steps li[data-step="${step}"] .took`)).toBe('took < 1 s');
      }
      expect(await page.textContent('body')).not.toContain('took 0 s');
    });
  });
});

describe('Cancel and Retry', () => {
  it('cancels a running demo book from the list, then retries it from its page to the end, the outcome shown live', async () => {
    const res = await fetch(`${service.url}/api/books`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Cancel me', chapters: 10, sectionsPerChapter: 2 }) });
    const { data } = (await res.json()) as { data: { bookId: string } };
    await withPage(async (page) => {
      await page.goto(service.url);
      const row = page.locator(`tr[data-book-id="${data.bookId}"]`);
      await row.getByRole('button', { name: 'Cancel Cancel me' }).click();
      await row.locator('.outcome', { hasText: /Cancelled|Cancel requested/ }).waitFor();
      await row.locator('td', { hasText: '✕ Failed' }).waitFor({ timeout: 10_000 });
      await row.getByRole('button', { name: 'Retry Cancel me' }).waitFor();
      expect(await row.getByRole('button', { name: 'Cancel Cancel me' }).isVisible()).toBe(false);

      await page.goto(`${service.url}/book/${data.bookId}`);
      await page.locator('#error', { hasText: 'cancelled' }).waitFor();
      await page.getByRole('button', { name: 'Retry Cancel me' }).click();
      await page.locator('.outcome', { hasText: 'Queued again' }).waitFor();
      await page.locator('#status', { hasText: /Planning|Generating/ }).waitFor({ timeout: 10_000 });
      await page.getByRole('button', { name: 'Cancel Cancel me' }).waitFor();
      await page.locator('#status', { hasText: 'Complete' }).waitFor({ timeout: 30_000 });
      expect(await page.locator('button[data-action]:visible').count()).toBe(0);
    });
  });

  it('refuses in words when the book is in the wrong state', async () => {
    const res = await fetch(`${service.url}/api/books`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'Race', chapters: 10, sectionsPerChapter: 2 }) });
    const { data } = (await res.json()) as { data: { bookId: string } };
    await withPage(async (page) => {
      await page.goto(`${service.url}/book/${data.bookId}`);
      const cancel = page.getByRole('button', { name: 'Cancel Race' });
      await cancel.waitFor();
      // Cancelled behind the page's back: its button still shows until the state arrives.
      await page.route('**/cancel', async (route) => route.fulfill({ status: 409, contentType: 'application/json', body: JSON.stringify({ success: false, error: { code: 'conflict', message: 'book is ERROR; only a queued or running book can be cancelled' } }) }));
      await cancel.click();
      await page.locator('.outcome[data-state="failed"]', { hasText: 'Cancel refused: book is ERROR' }).waitFor();
      await fetch(`${service.url}/api/books/${data.bookId}/cancel`, { method: 'POST' });
    });
  });
});
