import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/browser.js';
import { serverForFile } from '../support/service.js';
import { TEST_SECRET, bearer, mintToken } from '../support/tokens.js';

// Under BASE_PATH and with authentication on: the page, its viewer and the document are open and relative to the prefix.
const server = serverForFile({ BASE_PATH: '/progress', AUTH_JWT_SECRET: TEST_SECRET });

describe('GET /docs', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('serves the viewer from this server under the pages\' policy: no CDN, no inline script or style, no eval', async () => {
    const res = await fetch(`${server.url}/docs`);
    expect(res.status).toBe(200);
    const policy = res.headers.get('content-security-policy') ?? '';
    expect(policy).toContain("script-src 'self'");
    expect(policy).toContain("style-src 'self'");
    expect(policy).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
    const html = await res.text();
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script>(?!<\/script>)|<style|style=/);
    for (const asset of ['swagger-ui-bundle.js', 'swagger-ui.css', 'init.js']) expect((await fetch(`${server.url}/docs/assets/${asset}`)).status).toBe(200);
    expect((await fetch(`${server.url}/docs/assets/nothing.js`)).status).toBe(404);
  });

  it('is open with authentication on, whatever the token: the document and the page hold no data', async () => {
    const expected = await (await fetch(`${server.url}/api/openapi.json`)).text();
    const tokens = {
      other: await mintToken({ sub: 'olga', tenant: 'globex' }),
      expired: await mintToken({ sub: 'wanda', tenant: 'acme' }, { ttlSeconds: -60 }),
      forged: await mintToken({ sub: 'wanda', tenant: 'acme', scope: 'admin' }, { secret: 'another-secret-of-exactly-32-byt' }),
    };
    for (const [who, token] of Object.entries(tokens)) {
      const res = await fetch(`${server.url}/api/openapi.json`, { headers: bearer(token) });
      expect(res.status, who).toBe(200);
      expect(await res.text(), who).toBe(expected);
      expect((await fetch(`${server.url}/docs`, { headers: bearer(token) })).status, who).toBe(200);
    }
    expect(JSON.parse(expected).servers).toEqual([{ url: '/progress' }]);
    expect((await fetch(`${server.url}/api/books`)).status).toBe(401);
  });

  it('renders every endpoint in Chromium with no securitypolicyviolation', async () => {
    const page = await browser.newPage();
    try {
      await page.addInitScript(() => {
        const violations: string[] = [];
        (window as unknown as { violations: string[] }).violations = violations;
        document.addEventListener('securitypolicyviolation', (event) => violations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}`));
      });
      const requests: string[] = [];
      page.on('request', (request) => requests.push(request.url()));
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      await page.goto(`${server.url}/docs`);
      await page.locator('.opblock').first().waitFor({ timeout: 20_000 });
      const shown = await page.locator('.opblock-summary-path').allInnerTexts();
      for (const path of ['/api/ai/progress/{bookId}', '/api/ai/progress/{bookId}/stream', '/api/ai/ws', '/api/books/{bookId}/chapters/{n}', '/api/books/{bookId}/retry', '/healthz', '/metrics']) {
        expect(shown.map((text) => text.replace(/\u200b/g, ''))).toContain(path);
      }
      expect(await page.getByText('SseEvent').count()).toBeGreaterThan(0);
      await page.screenshot({ path: 'test/artifacts/docs.png', fullPage: false });
      // An operation opens with its parameters, headers and answers' schemas.
      await page.locator('#operations-Progress-get_api_ai_progress__bookId_ .opblock-summary').click();
      await page.locator('#operations-Progress-get_api_ai_progress__bookId_ .responses-table').first().waitFor({ timeout: 5_000 });
      expect(await page.locator('#operations-Progress-get_api_ai_progress__bookId_').innerText()).toMatch(/X-Progress-Source[\s\S]*304/);
      await page.locator('#operations-Progress-get_api_ai_progress__bookId_').screenshot({ path: 'test/artifacts/docs-poll.png' });
      expect(await page.evaluate(() => (window as unknown as { violations: string[] }).violations)).toEqual([]);
      expect(errors).toEqual([]);
      // The listener is live: an inline style attribute is refused and reported.
      await page.evaluate(() => document.body.insertAdjacentHTML('beforeend', '<div style="color: red">inline</div>'));
      await page.waitForFunction(() => (window as unknown as { violations: string[] }).violations.length > 0, null, { timeout: 5_000 });
      const origin = new URL(server.url).origin;
      expect(requests.filter((url) => !url.startsWith(origin) && !url.startsWith('data:'))).toEqual([]);
    } finally {
      await page.close();
    }
  }, 60_000);
});
