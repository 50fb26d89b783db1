import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { launchChromium } from '../support/browser.js';
import { freePort } from '../support/ports.js';
import { startServer } from '../support/service.js';
import { TEST_SECRET } from '../support/tokens.js';
import { until, withTimeout } from '../support/wait.js';

// examples/host-app as an integrator runs it: its own process and origin (a port of 127.0.0.1),
// the progress server on another, sharing only AUTH_JWT_SECRET and CORS_ORIGINS.
let browser: Browser;
let service: Service;
let hostApp: ChildProcess;
let hostUrl: string;
let hostOutput = '';
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  const port = await freePort();
  hostUrl = `http://127.0.0.1:${port}`;
  [browser, service] = await Promise.all([launchChromium(), startServer({ AUTH_JWT_SECRET: TEST_SECRET, CORS_ORIGINS: hostUrl, DEMO_STEP_MS: '20' })]);
  hostApp = spawn(process.execPath, ['--import', 'tsx', 'examples/host-app/server.ts'], {
    // Tokens of 4 s: they expire, and the pages renew them, all through the tests.
    env: { PATH: process.env.PATH ?? '', HOST_APP_PORT: String(port), PROGRESS_URL: service.url, AUTH_JWT_SECRET: TEST_SECRET, TOKEN_TTL_SECONDS: '4' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  hostApp.stdout?.on('data', (chunk: Buffer) => (hostOutput += chunk.toString()));
  hostApp.stderr?.on('data', (chunk: Buffer) => (hostOutput += chunk.toString()));
  await until(
    async () => {
      if (hostApp.exitCode !== null) throw new Error(`the host app exited with ${hostApp.exitCode}: ${hostOutput}`);
      return fetch(`${hostUrl}/healthz`).then((res) => res.ok, () => false);
    },
    30_000,
    'the host app answers /healthz',
  );
});
afterAll(async () => {
  for (const context of contexts) await context.close();
  await browser?.close();
  if (hostApp?.pid !== undefined && hostApp.exitCode === null) {
    const exited = once(hostApp, 'exit');
    process.kill(hostApp.pid, 'SIGTERM');
    await withTimeout(exited, 10_000, 'the host app to exit');
  }
  await service?.close();
});

/** A fresh browser (its own cookies) signed in to the host app as `user`, its page watching live. */
async function signIn(user: string, password: string): Promise<Page> {
  const context = await browser.newContext();
  contexts.push(context);
  const page = await context.newPage();
  await page.goto(`${hostUrl}/`);
  await page.fill('input[name=user]', user);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.locator('#user').waitFor();
  await page.locator('#connection', { hasText: 'live' }).waitFor();
  return page;
}

/** Starts a book from the page and resolves with its id once its row shows up. */
async function startBook(page: Page, title: string): Promise<string> {
  await page.fill('#start input[name=title]', title);
  await page.fill('#start input[name=chapters]', '2');
  await page.click('#start button[type=submit]');
  const item = page.locator('#books li', { hasText: title });
  await item.waitFor();
  return (await item.getAttribute('data-book-id')) as string;
}

/** From now on, every percentage the page shows: live bars show some between 0 and 100. */
async function recordPercents(page: Page): Promise<void> {
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as unknown as { seen: string[] }).seen = seen;
    new MutationObserver(() => {
      for (const percent of document.querySelectorAll('#books .percent')) if (seen.at(-1) !== percent.textContent) seen.push(percent.textContent ?? '');
    }).observe(document.getElementById('books') as HTMLElement, { subtree: true, childList: true, characterData: true });
  });
}

async function percentsBetween(page: Page): Promise<string[]> {
  const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
  return seen.filter((p) => p !== '0 %' && p !== '100 %');
}

async function tokenCookie(page: Page): Promise<string | undefined> {
  return (await page.context().cookies(service.url)).find((c) => c.name === 'booksai_token')?.value;
}

async function watchFinish(page: Page, bookId: string): Promise<void> {
  const item = page.locator(`#books li[data-book-id="${bookId}"]`);
  await item.locator('.status', { hasText: 'COMPLETE' }).waitFor({ timeout: 20_000 });
  expect(await item.locator('.percent').textContent()).toBe('100 %');
  expect(await item.locator('progress').evaluate((bar) => (bar as HTMLProgressElement).value)).toBe(100);
}

describe('examples/host-app in Chromium', () => {
  it('refuses a wrong password', async () => {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${hostUrl}/`);
    await page.fill('input[name=user]', 'alice');
    await page.fill('input[name=password]', 'not-her-password');
    await page.click('button[type=submit]');
    await page.locator('#login-error', { hasText: 'wrong password' }).waitFor();
    expect(await context.cookies()).toEqual([]);
  });

  it("signs alice in, starts her book and shows it finish live; bob sees none of it, and his own works", async () => {
    // Bob is signed in and watching before Alice starts, so a leak would reach his open stream.
    const bob = await signIn('bob', 'bob-password');
    const alice = await signIn('alice', 'alice-password');

    const cookie = (await alice.context().cookies(service.url)).find((c) => c.name === 'booksai_token');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/', domain: '127.0.0.1' });
    expect(await alice.evaluate(() => document.cookie)).not.toContain('booksai_token');

    await recordPercents(alice);
    const alicesBook = await startBook(alice, "Alice's secret novel");
    await watchFinish(alice, alicesBook);
    expect((await percentsBetween(alice)).length).toBeGreaterThan(0);

    // Bob's book is published after all of Alice's states, on the same ordered stream: once it has
    // finished on his page, anything of Alice's his stream carried would have shown before it.
    const bobsBook = await startBook(bob, "Bob's own book");
    await watchFinish(bob, bobsBook);
    expect(await bob.locator('#books li').count()).toBe(1);
    expect(await bob.locator(`#books li[data-book-id="${alicesBook}"]`).count()).toBe(0);
    expect(await bob.textContent('body')).not.toContain("Alice's secret novel");

    // Nor can Bob's cookie read her book directly, from his page.
    const direct = await bob.evaluate(async ({ url, id }) => (await fetch(`${url}/api/ai/progress/${id}`, { credentials: 'include' })).status, { url: service.url, id: alicesBook });
    expect(direct).toBe(404);

    // Alice's page, still open, never got Bob's book either.
    expect(await alice.locator(`#books li[data-book-id="${bobsBook}"]`).count()).toBe(0);
    expect(await alice.locator('#books li').count()).toBe(1);
  });

  it("stays live past the token's expiry: the page renews the cookie and the stream reconnects with it", async () => {
    const bob = await signIn('bob', 'bob-password');
    const first = (await tokenCookie(bob)) as string;
    const { exp } = decodeJwt(first);
    // The server ends a stream at its token's exp (event: auth); the client reconnects at once.
    await until(
      async () => {
        const current = await tokenCookie(bob); // undefined once the first one's Max-Age ran out unrenewed
        return Date.now() > (exp as number) * 1000 + 500 && current !== undefined && current !== first;
      },
      15_000,
      "bob's first token expired and his page renewed it",
    );
    await recordPercents(bob);
    const book = await startBook(bob, 'Written after the first token expired');
    await watchFinish(bob, book);
    expect((await percentsBetween(bob)).length).toBeGreaterThan(0);
    expect(await bob.textContent('#connection')).toBe('live');
  });

  it('lists the books so far when the page opens again, and logging out ends the token', async () => {
    const alice = await signIn('alice', 'alice-password');
    await alice.locator('#books li .status', { hasText: 'COMPLETE' }).waitFor();
    expect(await alice.locator('#books li .title').allTextContents()).toEqual(["Alice's secret novel"]);

    await alice.click('form[action="/logout"] button');
    await alice.locator('input[name=password]').waitFor();
    const cookies = await alice.context().cookies(service.url);
    expect(cookies.map((c) => c.name)).toEqual([]);
    const status = await alice.evaluate(async (url) => (await fetch(`${url}/api/books`, { credentials: 'include' })).status, service.url);
    expect(status).toBe(401);
  });
});

describe('npm run example:host-app, as the README gives it', () => {
  it('starts a progress server of its own that allows its origin and accepts its tokens, and stops it on SIGTERM', async () => {
    const [port, progressPort] = [await freePort(), await freePort()];
    const app = spawn('npm', ['run', '--silent', 'example:host-app'], {
      env: { PATH: process.env.PATH ?? '', HOST_APP_PORT: String(port), PROGRESS_PORT: String(progressPort), DATA_DIR: mkdtempSync(join(tmpdir(), 'booksai-host-app-')), LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    app.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    app.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const origin = `http://127.0.0.1:${port}`;
    const progress = `http://127.0.0.1:${progressPort}`;
    try {
      await until(() => output.includes(`host app on ${origin}`), 120_000, `the host app to start (output: ${output})`);
      const preflight = await fetch(`${progress}/api/books`, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'POST' } });
      expect(preflight.headers.get('access-control-allow-origin')).toBe(origin);
      // Signed in, the page's token (the cookie the app sets) reads the progress server's books.
      const login = await fetch(`${origin}/login`, { method: 'POST', body: new URLSearchParams({ user: 'alice', password: 'alice-password' }), redirect: 'manual' });
      const token = /booksai_token=([^;]+)/.exec(login.headers.getSetCookie().join('\n'))?.[1] ?? '';
      expect((await fetch(`${progress}/api/books`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
      expect(output).not.toContain('warning:');
    } finally {
      const exited = once(app, 'exit');
      process.kill(-app.pid!, 'SIGTERM');
      await withTimeout(exited, 15_000, 'the example to exit');
    }
    await until(async () => !(await fetch(`${progress}/healthz`).then(() => true, () => false)), 15_000, 'its progress server to stop');
  }, 180_000);

  it('with PROGRESS_URL, says what the progress server is missing', async () => {
    const port = await freePort();
    const app = spawn(process.execPath, ['--import', 'tsx', 'examples/host-app/server.ts'], {
      // The file's progress server allows another origin than this app's.
      env: { PATH: process.env.PATH ?? '', HOST_APP_PORT: String(port), PROGRESS_URL: service.url, AUTH_JWT_SECRET: 'another-secret-of-thirty-two-bytes-or-more' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    app.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    app.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await until(() => output.includes('host app on'), 60_000, `the host app to start (output: ${output})`);
      expect(output).toContain(`warning: the progress server does not allow this page's origin: start it with CORS_ORIGINS=http://127.0.0.1:${port}`);
      expect(output).toContain('warning: the progress server refuses this app\'s tokens: give both the same AUTH_JWT_SECRET');
    } finally {
      app.kill('SIGKILL');
    }
  }, 120_000);
});
