import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { bookId } from '../server/http.js';
import { launchChromium } from '../support/browser.js';
import { startServer } from '../support/service.js';
import { until } from '../support/wait.js';

interface Render {
  frame: number;
  versions: Record<string, number>;
  connection: string;
  transport: string;
  text?: string;
}
type App = { renders: Record<string, Render[]>; mount(name: string, kind: string, options: object): void; unmount(name: string): void };

let browser: Browser;
let service: Service;
let page: Page;
let appJs: string;
let streamRequests: string[];

beforeAll(async () => {
  const out = await build({
    entryPoints: ['test/web/apps/react-app.ts'],
    bundle: true,
    format: 'esm',
    write: false,
    define: { 'process.env.NODE_ENV': '"development"' }, // StrictMode's double mount happens in development only
    logLevel: 'silent',
  });
  appJs = out.outputFiles[0]?.text ?? '';
  browser = await launchChromium();
  service = await startServer();
});
afterAll(async () => {
  await browser?.close();
  await service?.close();
});
beforeEach(async () => {
  page = await browser.newPage();
  streamRequests = [];
  page.on('request', (r) => {
    if (r.url().includes('/stream')) streamRequests.push(r.url());
  });
  // The test app, served as if from the server's own origin (so the hooks use baseUrl '').
  await page.route(`${service.url}/__react/**`, (route) =>
    route.request().url().endsWith('.js')
      ? route.fulfill({ contentType: 'text/javascript', body: appJs })
      : route.fulfill({ contentType: 'text/html', body: '<!doctype html><meta charset="utf-8"><script type="module" src="/__react/app.js"></script>' }),
  );
  await page.goto(`${service.url}/__react/`);
  await page.waitForFunction(() => 'app' in window);
});
afterEach(async () => {
  await page?.close();
});

const mount = (name: string, kind: string, options: object) => page.evaluate(([n, k, o]) => (window as unknown as { app: App }).app.mount(n as string, k as string, o as object), [name, kind, options] as const);
const unmount = (name: string) => page.evaluate((n) => (window as unknown as { app: App }).app.unmount(n), name);
const renders = (name: string) => page.evaluate((n) => (window as unknown as { app: App }).app.renders[n] ?? [], name);
const shown = (name: string, id: string) => renders(name).then((r) => r.at(-1)?.versions[id] ?? 0);

describe('React hooks in Chromium', () => {
  it('useBookProgress re-renders at most once per frame through a burst, and never after unmount', async () => {
    const id = bookId('react-burst');
    await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'v1' });
    await mount('a', 'progress', { id });
    await mount('b', 'progress', { id });
    await until(async () => (await shown('a', id)) === 1, 10_000, 'the first state');
    for (let v = 2; v <= 150; v++) await service.tracker.updateProgress(id, { message: `v${v}` });
    await until(async () => (await shown('a', id)) === 150, 10_000, 'the last state of the burst');
    const burst = await renders('a');
    const frames = burst.map((r) => r.frame);
    expect(new Set(frames).size).toBe(frames.length); // never two renders in one frame
    expect(burst.length).toBeLessThan(75);
    const versions = burst.map((r) => r.versions[id] ?? 0);
    expect(versions).toEqual([...versions].sort((x, y) => x - y)); // never backwards

    await unmount('a');
    const atUnmount = (await renders('a')).length;
    for (let v = 151; v <= 160; v++) await service.tracker.updateProgress(id, { message: `v${v}` });
    await service.tracker.markComplete(id, 0);
    await until(async () => (await shown('b', id)) === 161, 10_000, 'the still mounted one to see the end');
    expect((await renders('a')).length).toBe(atUnmount);
    expect(streamRequests).toHaveLength(1); // both components on one stream
  });

  it("StrictMode's double mount opens one stream; an unmounted hook's stream closes", async () => {
    const id = bookId('react-strict');
    await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'v1' });
    const before = service.streams.size;
    await mount('s', 'progress', { id, strict: true });
    await until(async () => (await renders('s')).some((r) => r.connection === 'live' && r.versions[id] === 1), 10_000, 'live in StrictMode');
    await service.tracker.updateProgress(id, { message: 'v2' });
    await until(async () => (await shown('s', id)) === 2, 5_000, 'the second state');
    expect(streamRequests).toHaveLength(1);
    expect(service.streams.size - before).toBe(1);
    await unmount('s');
    await until(() => service.streams.size === before, 5_000, 'the stream to close after unmount');
  });

  it('suspends until the first state with suspense on, and useBooks follows several books on one stream', async () => {
    const id = bookId('react-suspense');
    const others = [bookId('react-books'), bookId('react-books')];
    await mount('p', 'progress', { id, suspense: true });
    await page.locator('.p-fallback').waitFor({ timeout: 5_000 });
    expect(await renders('p')).toEqual([]); // suspended: the component never rendered a state-less result
    await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'v1' });
    await page.locator('p.p', { hasText: '1' }).waitFor({ timeout: 10_000 });
    expect((await renders('p')).every((r) => r.versions[id] === 1)).toBe(true);

    await mount('m', 'books', { ids: others });
    for (const other of others) await service.tracker.updateProgress(other, { status: 'GENERATING', message: 'go' });
    for (const other of others) await service.tracker.markComplete(other, 0);
    await until(async () => {
      const last = (await renders('m')).at(-1);
      return last?.versions[others[0] as string] === 2 && last.versions[others[1] as string] === 2 && last.connection === 'closed';
    }, 10_000, 'both books complete');
    expect(streamRequests.filter((u) => u.includes('books='))).toHaveLength(1);
  });

  it('useBookText shows a chapter as it is written', async () => {
    const id = bookId('react-text');
    await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'writing' });
    await service.texts.beginSection(id, 1, 1);
    await mount('t', 'text', { id, chapter: 1 });
    await until(async () => (await renders('t')).some((r) => r.connection === 'live'), 10_000, 'the text stream');
    for (const word of ['Once ', 'upon ', 'a ', 'time.']) {
      const offset = (await service.texts.read(id, 1, 1))?.length ?? 0;
      const result = await service.texts.append(id, { chapter: 1, section: 1, offset }, word);
      if (!result.ok) throw new Error(JSON.stringify(result));
    }
    await page.locator('pre.t', { hasText: 'Once upon a time.' }).waitFor({ timeout: 10_000 });
  });
});
