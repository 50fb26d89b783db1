import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { EventSource } from 'eventsource';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { watchBooks } from '../../web/sdk/client.js';
import type { BooksUpdate, BooksWatching } from '../../web/sdk/client.js';
import { startServer } from '../support/service.js';
import { until } from '../support/wait.js';

const run = promisify(execFile);
const FLOOR_BYTES = 12 * 1024;
const consumer = resolve('test/artifacts/client-package');

let service: Service;
beforeAll(async () => {
  service = await startServer();
  // The package as `npm run build` makes it: the modules, then their declarations.
  await run(process.execPath, ['web/build.mjs', '--package']);
  await run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.sdk.json']);
  mkdirSync(consumer, { recursive: true });
}, 120_000);
afterAll(async () => {
  await service?.close();
});

async function bundleOf(entry: string, external: string[] = []) {
  const out = await build({ entryPoints: [entry], bundle: true, format: 'esm', target: 'es2022', minify: true, write: false, metafile: true, external, logLevel: 'silent' });
  const code = out.outputFiles[0]?.contents ?? new Uint8Array();
  return { gzipped: gzipSync(code, { level: 9 }).length, inputs: Object.keys(out.metafile.inputs) };
}

describe('booksai-progress/client as a package', () => {
  it('bundles to at most 12 KB gzipped, without zod (the client, the React hooks, the shared worker)', async () => {
    const client = await bundleOf('web/sdk/client.ts');
    expect(client.gzipped).toBeLessThanOrEqual(FLOOR_BYTES);
    const react = await bundleOf('web/sdk/react.ts', ['react']);
    expect(react.gzipped).toBeLessThanOrEqual(FLOOR_BYTES);
    const worker = await bundleOf('web/sdk/shared-worker.ts');
    for (const { inputs } of [client, react, worker]) {
      expect(inputs.filter((i) => i.includes('node_modules'))).toEqual([]);
      expect(inputs.some((i) => i.includes('src/progress/schema'))).toBe(false);
    }
    // The dashboard, built on the same client, dropped zod too.
    const dashboard = await bundleOf('web/book-page.ts');
    expect(dashboard.inputs.some((i) => i.includes('zod'))).toBe(false);
  });

  it('is imported by its name with no bundler, in Node, and follows a book to its end', async () => {
    const id = `pkg-${process.pid}-${Date.now()}`;
    await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'first' });
    const script = join(consumer, 'follow.mjs');
    writeFileSync(
      script,
      `import { EventSource } from 'eventsource';
import { watchBooks, parseBookProgress } from 'booksai-progress/client';
const calls = [];
watchBooks([process.argv[2]], (u) => {
  calls.push(u.connection);
  const state = u.books.get(process.argv[2]);
  if (u.connection === 'closed') { console.log(JSON.stringify({ status: state?.status, version: state?.version, valid: parseBookProgress(state) !== null, calls: calls.length })); process.exit(0); }
}, { baseUrl: process.argv[3], EventSource });
setTimeout(() => process.exit(3), 10_000);
`,
    );
    const child = run(process.execPath, [script, id, service.url]);
    await until(() => service.streams.size > 0, 5_000, 'the package client to open its stream');
    for (let i = 0; i < 20; i++) await service.tracker.updateProgress(id, { message: `update ${i}` });
    await service.tracker.markComplete(id, 0);
    const out = JSON.parse((await child).stdout) as { status: string; version: number; valid: boolean; calls: number };
    expect(out).toMatchObject({ status: 'COMPLETE', version: 22, valid: true });
  });

  it('has types a TypeScript consumer compiles against (client and react)', async () => {
    writeFileSync(
      join(consumer, 'consumer.ts'),
      `import { watchBooks, type BooksUpdate, type BookProgress } from 'booksai-progress/client';
import { useBookProgress, useBooks, useBookText } from 'booksai-progress/react';
const w = watchBooks(['a'], (u: BooksUpdate) => { const p: BookProgress | undefined = u.books.get('a'); void p; }, { throttleMs: 100, share: true });
w.close();
export const hooks = [useBookProgress, useBooks, useBookText];
// @ts-expect-error: an unknown option is refused
watchBooks(['a'], () => {}, { throttle: 1 });
`,
    );
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', lib: ['ES2024', 'DOM'], noEmit: true, skipLibCheck: false, types: [] }, files: ['consumer.ts'] }),
    );
    await run(process.execPath, [resolve('node_modules/typescript/bin/tsc'), '-p', join(consumer, 'tsconfig.json')]);
  });
});

describe('render-safe delivery', () => {
  let watching: BooksWatching | null = null;
  afterAll(() => watching?.close());

  it('merges the replay of a (re)connection into one call, and a burst into one call per period', async () => {
    const books = Array.from({ length: 8 }, (_, i) => `burst-${process.pid}-${Date.now()}-${i}`);
    for (const id of books) for (let v = 0; v < 5; v++) await service.tracker.updateProgress(id, { status: 'GENERATING', message: `v${v}` });
    const calls: Array<{ at: number; update: BooksUpdate }> = [];
    watching = watchBooks(books, (update) => calls.push({ at: Date.now(), update }), { baseUrl: service.url, EventSource, throttleMs: 150 });
    await until(() => calls.some((c) => c.update.books.size === 8), 5_000, 'the first states');
    // The snapshot of all eight books arrives as one call, newest only.
    const first = calls.find((c) => c.update.changed.length > 0);
    expect(first?.update.changed.length).toBe(8);
    expect(first?.update.changed.every((s) => s.version === 5)).toBe(true);

    const before = calls.length;
    const started = Date.now();
    await Promise.all(books.map(async (id) => {
      for (let v = 0; v < 25; v++) await service.tracker.updateProgress(id, { message: `burst ${v}` });
    }));
    await until(() => [...(watching?.current.books.values() ?? [])].every((s) => s.version === 30), 10_000, 'the burst to arrive');
    await until(() => calls.at(-1)?.update.books.get(books[0] as string)?.version === 30, 2_000, 'the last call');
    const burst = calls.slice(before);
    const elapsed = Date.now() - started;
    // 200 updates: at most one call per 150 ms (and one more for the period under way).
    expect(burst.length).toBeLessThanOrEqual(Math.ceil(elapsed / 150) + 1);
    for (let i = 1; i < burst.length; i++) expect((burst[i]?.at ?? 0) - (burst[i - 1]?.at ?? 0)).toBeGreaterThanOrEqual(140);
  });
});
