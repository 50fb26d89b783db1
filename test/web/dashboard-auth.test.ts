import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { launchChromium } from '../support/browser.js';
import { startServer } from '../support/service.js';
import { TEST_SECRET, bearer, mintToken } from '../support/tokens.js';

let browser: Browser;
let service: Service;
let alice: string;
let bob: string;
const books: Record<string, string> = {};

async function startBook(token: string, title: string): Promise<string> {
  const res = await fetch(`${service.url}/api/books`, { method: 'POST', headers: bearer(token, { 'content-type': 'application/json' }), body: JSON.stringify({ title, chapters: 1, sectionsPerChapter: 1 }) });
  expect(res.status).toBe(201);
  const id = ((await res.json()) as { data: { bookId: string } }).data.bookId;
  await service.orchestrator.settled(id);
  return id;
}

beforeAll(async () => {
  browser = await launchChromium();
  service = await startServer({ AUTH_JWT_SECRET: TEST_SECRET, DEMO_STEP_MS: '5' });
  alice = await mintToken({ sub: 'alice', tenant: 'acme', scope: 'progress:read books:write' });
  bob = await mintToken({ sub: 'bob', tenant: 'globex', scope: 'progress:read books:write' });
  books.alice = await startBook(alice, "Alice's private book");
  books.bob = await startBook(bob, "Bob's private book");
});
afterAll(async () => {
  await browser?.close();
  await service?.close();
});

describe('dashboard with authentication on', () => {
  it('asks for a token, then shows only the signed-in tenant\'s books', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${service.url}/`);
      await page.locator('#sign-in input[name=token]').waitFor();
      await page.fill('#sign-in input[name=token]', alice);
      await page.click('#sign-in button[type=submit]');
      await page.locator(`tr[data-book-id="${books.alice}"]`).waitFor();
      expect(await page.locator(`tr[data-book-id="${books.bob}"]`).count()).toBe(0);
      expect(await page.locator('#sign-in').isHidden()).toBe(true);
      expect(await page.textContent('body')).not.toContain("Bob's private book");
      // A book started from the page is Alice's, and runs to the end live.
      await page.fill('input[name=title]', 'Started in the browser');
      await page.click('#new-book button[type=submit]');
      const row = page.locator('tr', { hasText: 'Started in the browser' });
      await row.locator('[role=progressbar][aria-valuenow="100"]').waitFor({ timeout: 15_000 });
    } finally {
      await page.close();
    }
  });

  it('uses the booksai_token cookie the host app set (HttpOnly) without asking', async () => {
    const context = await browser.newContext();
    try {
      await context.addCookies([{ name: 'booksai_token', value: bob, url: service.url, httpOnly: true, sameSite: 'Strict' }]);
      const page = await context.newPage();
      await page.goto(`${service.url}/`);
      await page.locator(`tr[data-book-id="${books.bob}"]`).waitFor();
      expect(await page.locator('#sign-in').isHidden()).toBe(true);
      expect(await page.locator(`tr[data-book-id="${books.alice}"]`).count()).toBe(0);
      // Alice's book page shows nothing of hers to Bob.
      await page.goto(`${service.url}/book/${books.alice}`);
      await page.waitForFunction(() => document.querySelector('#connection')?.textContent !== 'Connecting…');
      expect(await page.textContent('body')).not.toContain("Alice's private book");
      expect(await page.locator('article.chapter').count()).toBe(0);
    } finally {
      await context.close();
    }
  });
});
