import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { REDIS_URL, createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { Watch } from '../support/events.js';
import { freePort } from '../support/ports.js';
import { startTestService } from '../support/service.js';
import { until, withTimeout } from '../support/wait.js';
import { bookId, progressUrl, published } from './http.js';

/** Two servers on one Redis prefix and one database: this process, and `node src/main.ts` as a child. */
let database: TestDatabase;
let local: Service;
let child: ChildProcess;
let childUrl: string;
let childOutput = '';
const watches: Watch[] = [];

beforeAll(async () => {
  const prefix = uniquePrefix();
  database = await createTestDatabase();
  local = await startTestService({ REDIS_KEY_PREFIX: prefix, DATABASE_URL: database.url });

  const port = await freePort();
  childUrl = `http://127.0.0.1:${port}`;
  child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: {
      PATH: process.env.PATH,
      PORT: String(port),
      HOST: '127.0.0.1',
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      DATABASE_URL: database.url,
      DATA_DIR: mkdtempSync(join(tmpdir(), 'booksai-cluster-')),
      LOG_LEVEL: 'warn',
      DEMO_TOKENS_PER_SECOND: '1000000000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => (childOutput += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (childOutput += chunk.toString()));
  await until(
    async () => {
      if (child.exitCode !== null) throw new Error(`the child server exited with ${child.exitCode}: ${childOutput}`);
      return fetch(`${childUrl}/healthz`).then((res) => res.ok, () => false);
    },
    20_000,
    'the child server answers /healthz',
  );
});

afterEach(() => {
  for (const watch of watches.splice(0)) watch.close();
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await withTimeout(exited, 10_000, 'the child server to stop').catch(() => child.kill('SIGKILL'));
  }
  await local?.close();
  await database?.drop();
});

function watch(baseUrl: string, id: string): Watch {
  const w = new Watch(`${progressUrl(baseUrl, id)}/stream`);
  watches.push(w);
  return w;
}

describe('two server processes on one Redis', () => {
  it('delivers to a watcher on one what is published through the other, both ways', async () => {
    const id = bookId('cluster');
    const onLocal = watch(local.url, id);
    const onChild = watch(childUrl, id);
    await Promise.all([onLocal.opened(), onChild.opened()]);

    const first = await published(childUrl, id, { status: 'GENERATING', message: 'via the child' });
    const second = await published(local.url, id, { message: 'via this process' });
    const third = await published(childUrl, id, { message: 'via the child again' });
    expect([first.version, second.version, third.version]).toEqual([1, 2, 3]);

    await Promise.all([onLocal.version(3), onChild.version(3)]);
    expect(onLocal.states).toEqual([first, second, third]);
    expect(onChild.states).toEqual([first, second, third]);
  });

  it('serves the same latest state from both', async () => {
    const id = bookId('cluster-poll');
    const state = await published(childUrl, id, { status: 'GENERATING', generationStep: 'OUTLINE' });
    for (const baseUrl of [local.url, childUrl]) {
      const res = await fetch(progressUrl(baseUrl, id));
      expect(res.headers.get('etag')).toBe(`"${state.version}"`);
      expect(await res.json()).toEqual({ success: true, data: state });
    }
  });

  it('gives publishers on both servers distinct consecutive versions, and every watcher the last', async () => {
    const id = bookId('cluster-race');
    const watchers = [watch(local.url, id), watch(childUrl, id)];
    await Promise.all(watchers.map((w) => w.opened()));

    const states = await Promise.all(
      Array.from({ length: 30 }, (_, i) => published(i % 2 === 0 ? local.url : childUrl, id, { status: 'GENERATING', message: `writer ${i}` })),
    );
    const versions = states.map((s) => s.version).sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));

    const last = states.find((s) => s.version === 30) as BookProgress;
    for (const w of watchers) expect(await w.version(30)).toEqual(last);
  });
});
