import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { launchChromium } from '../support/browser.js';
import { startServer } from '../support/service.js';
import { TEST_SECRET, bearer, mintToken } from '../support/tokens.js';

// Signed out, signed in, a refused token, and what a token's scopes show, with authentication on.
let browser: Browser;
let service: Service;
const tokens = {} as Record<'writer' | 'reader' | 'expired' | 'forged', string>;
let book: string;

/** A tab whose sessionStorage holds `token`, as after pasting it into the sign-in box. */
async function tabWith(token: string | null): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  if (token !== null) await context.addInitScript((t) => sessionStorage.setItem('booksai_token', t), token);
  return context;
}

beforeAll(async () => {
  browser = await launchChromium();
  service = await startServer({ AUTH_JWT_SECRET: TEST_SECRET, DEMO_STEP_MS: '400' });
  tokens.writer = await mintToken({ sub: 'alice', tenant: 'acme', scope: 'progress:read books:write' });
  tokens.reader = await mintToken({ sub: 'carol', tenant: 'acme', scope: 'progress:read' });
  tokens.expired = await mintToken({ sub: 'alice', tenant: 'acme', scope: 'progress:read books:write' }, { ttlSeconds: -60 });
  tokens.forged = await mintToken({ sub: 'alice', tenant: 'acme', scope: 'admin' }, { secret: 'not-the-server-secret-but-32-byte' });
  const res = await fetch(`${service.url}/api/books`, { method: 'POST', headers: bearer(tokens.writer, { 'content-type': 'application/json' }), body: JSON.stringify({ title: 'Acme book', chapters: 10, sectionsPerChapter: 2 }) });
  book = ((await res.json()) as { data: { bookId: string } }).data.bookId;
});
afterAll(async () => {
  await browser?.close();
  await service?.close();
});

describe('dashboard sessions', () => {
  it('signed out: says so and asks for sign-in, on the list and on a book page', async () => {
    const context = await tabWith(null);
    try {
      const page = await context.newPage();
      for (const path of ['/', `/book/${book}`]) {
        await page.goto(`${service.url}${path}`);
        await page.locator('#sign-in input[name=token]').waitFor();
        expect(await page.textContent('#connection')).toBe('Signed out');
        expect(await page.textContent('#sign-in')).toContain('This server needs a token');
        const text = await page.innerText('body');
        for (const wrong of ['Connecting…', 'No books yet', 'Polling every 3 s', 'unauthorized', 'Acme book']) expect(text).not.toContain(wrong);
        expect(await page.locator('#new-book, #books, #progress-heading').evaluateAll((els) => els.filter((e) => (e as HTMLElement).offsetParent !== null).length)).toBe(0);
      }
    } finally {
      await context.close();
    }
  });

  it('a refused token (expired or forged) asks to sign in again, never "Polling every 3 s"', async () => {
    for (const [token, reason] of [[tokens.expired, 'expired'], [tokens.forged, '']] as const) {
      const context = await tabWith(token);
      try {
        const page = await context.newPage();
        await page.goto(`${service.url}/`);
        await page.locator('#sign-in input[name=token]').waitFor();
        expect(await page.textContent('#connection')).toBe('Token refused');
        expect(await page.textContent('#sign-in')).toContain('The token was refused');
        if (reason) expect(await page.textContent('#sign-in')).toContain(reason);
        expect(await page.innerText('body')).not.toContain('Polling every 3 s');
        expect(await page.innerText('body')).not.toContain('Acme book');
      } finally {
        await context.close();
      }
    }
  });

  it('signed in: shows who and the tenant, offers sign-out, and Cancel for a writer', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${service.url}/`);
      await page.fill('#sign-in input[name=token]', tokens.writer);
      await page.click('#sign-in button[type=submit]');
      await page.locator(`tr[data-book-id="${book}"]`).waitFor();
      expect(await page.textContent('#who')).toContain('Signed in as alice · tenant acme');
      expect(await page.locator('#new-book').isVisible()).toBe(true);
      await page.locator(`tr[data-book-id="${book}"] button[data-action=cancel]`).waitFor();
      await page.click('#sign-out');
      await page.locator('#sign-in input[name=token]').waitFor();
      expect(await page.textContent('#connection')).toBe('Signed out');
      expect(await page.evaluate(() => sessionStorage.getItem('booksai_token'))).toBeNull();
    } finally {
      await context.close();
    }
  });

  it('a reader sees the books, but neither Start nor Cancel and Retry', async () => {
    const context = await tabWith(tokens.reader);
    try {
      const page = await context.newPage();
      await page.goto(`${service.url}/`);
      await page.locator(`tr[data-book-id="${book}"]`).waitFor();
      expect(await page.textContent('#who')).toContain('Signed in as carol · tenant acme');
      expect(await page.locator('#new-book').isVisible()).toBe(false);
      expect(await page.locator('button[data-action]').count()).toBe(0);
      await page.goto(`${service.url}/book/${book}`);
      await page.locator('#percent').waitFor();
      expect(await page.locator('button[data-action]').count()).toBe(0);
    } finally {
      await context.close();
    }
  });
});
