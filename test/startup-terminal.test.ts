import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pace } from './support/wait.js';

const run = promisify(execFile);

/** A tmux server of this test alone (its own socket), 160x40, running a plain bash. */
let socket: string;
const tmux = async (...args: string[]): Promise<string> => (await run('tmux', ['-L', socket, ...args])).stdout;
beforeEach(async () => {
  socket = `booksai-start-${process.pid}-${randomBytes(4).toString('hex')}`;
  await tmux('new-session', '-d', '-s', 'server', '-x', '160', '-y', '40', 'env -i PATH="$PATH" TERM=xterm-256color bash --noprofile --norc');
});
afterEach(async () => {
  await tmux('kill-server').catch(() => {});
});

/** The visible screen, once it shows `pattern` (re-captured at the test's own rhythm: a screen has no event). */
async function screenShowing(pattern: RegExp, ms = 60_000): Promise<string> {
  const deadline = Date.now() + ms;
  let screen = '';
  while (Date.now() < deadline) {
    screen = await tmux('capture-pane', '-p', '-t', 'server');
    if (pattern.test(screen)) return screen;
    await pace(200);
  }
  throw new Error(`the terminal did not show ${pattern} within ${ms} ms; it shows:\n${screen}`);
}

describe('the server started at a terminal', () => {
  it('prints readable lines saying the backends, the dashboard and whether authentication is on', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'booksai-terminal-'));
    await tmux('send-keys', '-t', 'server', `cd ${process.cwd()} && PORT=0 HOST=127.0.0.1 DATA_DIR=${dataDir} node --import tsx src/main.ts`, 'Enter');
    const screen = await screenShowing(/dashboard at http:\/\/127\.0\.0\.1:\d+\/, authentication off/);
    expect(screen).toMatch(/INFO.*backends: in-memory broker, pglite database/);
    expect(screen).toMatch(/WARN.*authentication is off/);
    expect(screen).not.toContain('{"level"');
    await tmux('send-keys', '-t', 'server', 'C-c', '');
    await screenShowing(/INFO.*stopped/);
  }, 120_000);
});
