import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './support/ports.js';
import { withTimeout } from './support/wait.js';

/** Runs `node src/main.ts` with `env` until it exits; what it printed, and its exit code. */
async function start(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', DATA_DIR: mkdtempSync(join(tmpdir(), 'booksai-startup-')), LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    const [code] = (await withTimeout(once(child, 'exit'), 30_000, 'the server to give up')) as [number | null];
    return { code, output };
  } finally {
    child.kill('SIGKILL');
  }
}

/** Exit 1 and exactly one line, naming `setting`, with no stack trace. */
function expectOneLine(result: { code: number | null; output: string }, setting: string, says: RegExp): void {
  expect(result.code, result.output).toBe(1);
  const lines = result.output.trim().split('\n');
  expect(lines, result.output).toHaveLength(1);
  expect(lines[0]).toContain(setting);
  expect(lines[0]).toMatch(says);
  expect(result.output).not.toMatch(/\n\s+at /);
}

let busy: Server;
let busyPort: number;

beforeAll(async () => {
  busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  busyPort = (busy.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((resolve) => busy?.close(resolve));
});

describe('start-up failures print one line naming the setting and exit 1', () => {
  it('a port already in use', async () => {
    expectOneLine(await start({ PORT: String(busyPort) }), 'PORT', new RegExp(`127\\.0\\.0\\.1:${busyPort} is already in use`));
  });

  it('a malformed DATABASE_URL', async () => {
    expectOneLine(await start({ DATABASE_URL: 'postgres//localhost/db' }), 'DATABASE_URL', /invalid configuration: DATABASE_URL: /);
    expectOneLine(await start({ DATABASE_URL: 'mysql://localhost/db' }), 'DATABASE_URL', /invalid configuration: DATABASE_URL: /);
  });

  it('an unreachable DATABASE_URL, without its password', async () => {
    const port = await freePort();
    const result = await start({ DATABASE_URL: `postgres://postgres:s3cret-pw@127.0.0.1:${port}/booksai` });
    expectOneLine(result, 'DATABASE_URL', new RegExp(`^DATABASE_URL: cannot open postgres://postgres:\\*\\*\\*@127\\.0\\.0\\.1:${port}/booksai: .*ECONNREFUSED`));
    expect(result.output).not.toContain('s3cret-pw');
  });

  it('an embedded DATA_DIR that cannot be a folder', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'booksai-startup-')), 'a-file');
    writeFileSync(file, 'not a folder');
    expectOneLine(await start({ DATA_DIR: file }), 'DATA_DIR', /^DATA_DIR: cannot open the embedded database under /);
  });

  it('bad settings, each named', async () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ HEARTBEAT_MS: 'often' }, 'HEARTBEAT_MS'],
      [{ CORS_ORIGINS: 'app.example.com' }, 'CORS_ORIGINS'],
      [{ CORS_ORIGINS: 'https://app.example.com/' }, 'CORS_ORIGINS'],
      [{ BASE_PATH: 'progress/' }, 'BASE_PATH'],
      [{ TRUST_PROXY: 'maybe' }, 'TRUST_PROXY'],
      [{ PORT: '70000' }, 'PORT'],
    ];
    const results = await Promise.all(cases.map(([env]) => start(env)));
    results.forEach((result, i) => expectOneLine(result, cases[i]![1], /^invalid configuration: /));
  });
});

/** A server process that keeps running: resolves once it listens, with its pid and url. */
async function serve(env: Record<string, string>): Promise<{ child: ReturnType<typeof spawn>; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const listening = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const url = /"url":"([^"]+)","msg":"listening"/.exec(output)?.[1];
      if (url) resolve(url);
    });
    child.once('exit', (code) => reject(new Error(`the server exited with ${code}: ${output}`)));
  });
  try {
    return { child, url: await withTimeout(listening, 60_000, 'the server to listen') };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

describe('one process per embedded DATA_DIR', () => {
  it('a second process stops at once, naming the one that holds it; a dead holder\'s lock is taken over', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'booksai-locked-'));
    const first = await serve({ DATA_DIR: dataDir });
    let second: Awaited<ReturnType<typeof serve>> | undefined;
    try {
      const refused = await start({ DATA_DIR: dataDir });
      expectOneLine(refused, 'DATA_DIR', new RegExp(`^DATA_DIR: ${dataDir} is in use by another booksai-progress process \\(pid ${first.child.pid}\\)$`));
      expect((await fetch(`${first.url}/healthz`)).status).toBe(200);

      first.child.kill('SIGKILL');
      await once(first.child, 'exit');
      second = await serve({ DATA_DIR: dataDir });
      expect((await fetch(`${second.url}/healthz`)).status).toBe(200);
    } finally {
      first.child.kill('SIGKILL');
      second?.child.kill('SIGKILL');
    }
  }, 120_000);
});
