import { build } from 'esbuild';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ANY_WRITER } from '../../src/progress/tracker.js';
import type { Service } from '../../src/service.js';
import { bookId } from '../server/http.js';
import { launchChromium } from '../support/browser.js';
import { startServer } from '../support/service.js';
import { TEST_SECRET, mintToken } from '../support/tokens.js';
import { pace, until, watchForAbsence } from '../support/wait.js';

type Tab = { version: number; connection: string; transport: string };
const acme = { tenant: 'acme', anyTenant: false };

let browser: Browser;
let service: Service;
let context: BrowserContext;
let appJs: string;

beforeAll(async () => {
  const out = await build({ entryPoints: ['test/web/apps/tabs-app.ts'], bundle: true, format: 'esm', write: false, logLevel: 'silent' });
  appJs = out.outputFiles[0]?.text ?? '';
  browser = await launchChromium();
  service = await startServer({ AUTH_JWT_SECRET: TEST_SECRET });
});
afterAll(async () => {
  await browser?.close();
  await service?.close();
});
beforeEach(async () => {
  context = await browser.newContext();
  await context.route(`${service.url}/__tabs/**`, (route) =>
    route.request().url().includes('app.js')
      ? route.fulfill({ contentType: 'text/javascript', body: appJs })
      : route.fulfill({ contentType: 'text/html', body: '<!doctype html><meta charset="utf-8"><base href="/"><script type="module" src="/__tabs/app.js"></script><body></body>' }),
  );
});
afterEach(async () => {
  await context?.close();
});

/** A tab whose getToken answers with `mint(refresh)` (or that has none). */
async function tab(book: string, mint: ((refresh: boolean) => Promise<string>) | null): Promise<Page> {
  const page = await context.newPage();
  if (mint) await page.exposeFunction('nextToken', mint);
  await page.goto(`${service.url}/__tabs/?book=${book}&share=worker${mint ? '&auth' : ''}`);
  return page;
}
const tabOf = (page: Page) => page.evaluate(() => (window as unknown as { tab: Tab }).tab);

describe('the shared worker with authentication', () => {
  it("asks the tabs for tokens, and for a fresh one when the stream's expires, losing nothing", async () => {
    const books = [bookId('tabs-auth'), bookId('tabs-auth')];
    for (const id of books) await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'v1' }, { writer: acme });
    const refreshes: boolean[] = [];
    const mint = async (refresh: boolean) => {
      refreshes.push(refresh);
      return mintToken({ sub: 'alice', tenant: 'acme' }, { ttlSeconds: 2 });
    };
    const pages = [await tab(books[0] as string, mint), await tab(books[1] as string, mint)];
    await until(async () => (await Promise.all(pages.map(tabOf))).every((t) => t.version === 1 && t.connection === 'live'), 10_000, 'both tabs live');
    const deadline = Date.now() + 4_500; // past two expiries of the worker's stream
    while (Date.now() < deadline) {
      for (const id of books) await service.tracker.updateProgress(id, { message: 'more' }, { writer: ANY_WRITER });
      await pace(100);
    }
    const finals = await Promise.all(books.map((id) => service.tracker.markComplete(id, 0)));
    await until(async () => (await Promise.all(pages.map(tabOf))).every((t, i) => t.version === finals[i]?.version), 10_000, 'both tabs at the final version');
    expect(refreshes[0]).toBe(false);
    expect(refreshes.filter((r) => r).length).toBeGreaterThanOrEqual(1);
  });

  for (const [label, mint] of [
    ['no token', null],
    ["another tenant's token", () => mintToken({ sub: 'mallory', tenant: 'other' })],
    ['an expired token', () => mintToken({ sub: 'alice', tenant: 'acme' }, { ttlSeconds: -60 })],
    ['a forged token', () => mintToken({ sub: 'alice', tenant: 'acme' }, { secret: 'another-secret-of-exactly-32-byte' })],
  ] as const) {
    it(`shows nothing of a book to a tab with ${label}`, async () => {
      const id = bookId('tabs-auth-refused');
      await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'secret' }, { writer: acme });
      const page = await tab(id, mint);
      await until(async () => ['polling', 'offline', 'connecting'].includes((await tabOf(page)).connection), 5_000, 'a connection state');
      await service.tracker.updateProgress(id, { message: 'still secret' }, { writer: acme });
      await watchForAbsence(1_500);
      const seen = await tabOf(page);
      expect(seen.version).toBe(0);
      expect(seen.connection).not.toBe('live');
    });
  }
});
