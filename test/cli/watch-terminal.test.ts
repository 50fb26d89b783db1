import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bookId, publish } from '../server/http.js';
import { serverForFile } from '../support/service.js';
import { pace } from '../support/wait.js';
import { BIN } from './cli.js';

const run = promisify(execFile);
const server = serverForFile();

/** A tmux server of this test alone (its own socket), 120x30, running a plain bash. */
let socket: string;
const tmux = async (...args: string[]): Promise<string> => (await run('tmux', ['-L', socket, ...args])).stdout;
beforeEach(async () => {
  socket = `booksai-cli-${process.pid}-${randomBytes(4).toString('hex')}`;
  await tmux('new-session', '-d', '-s', 'watch', '-x', '120', '-y', '30', 'env -i PATH="$PATH" TERM=xterm-256color bash --noprofile --norc');
});
afterEach(async () => {
  await tmux('kill-server').catch(() => {});
});

/** The visible screen, once it shows `pattern` (re-captured at the test's own rhythm: a screen has no event). */
async function screenShowing(pattern: RegExp, ms = 20_000): Promise<string> {
  const deadline = Date.now() + ms;
  let screen = '';
  while (Date.now() < deadline) {
    screen = await tmux('capture-pane', '-p', '-t', 'watch');
    if (pattern.test(screen)) return screen;
    await pace(100);
  }
  throw new Error(`the terminal did not show ${pattern} within ${ms} ms; it shows:\n${screen}`);
}

const ok = async (res: Promise<Response>) => expect((await res).status).toBe(200);

describe('booksai-progress watch in a terminal', () => {
  it('draws a live bar per book with step, chapter and ETA, redrawn in place, and exits 0', async () => {
    const a = bookId('bar-a');
    const b = bookId('bar-b');
    await tmux('send-keys', '-t', 'watch', `cd ${process.cwd()} && node ${BIN} watch ${a} ${b} --url ${server.url}; echo "exit=$?"`, 'Enter');
    // Both bars, before any update: waiting.
    await screenShowing(new RegExp(`^${b}\\s+░{24}\\s+0% \\| waiting \\| - \\| ETA - \\| waiting for the first update`, 'm'));

    const startTime = Date.now() - 60_000;
    await ok(publish(server.url, a, { status: 'GENERATING', generationStep: 'CHAPTERS', currentChapter: 2, totalChapters: 10, startTime, message: 'Writing Chapter 2 of 10...' }));
    // 25 % + 65 % * 1/10 = 31.5 %: a quarter of the bar or so is drawn, and a minute took 31.5 %, so about 2m 10s are left.
    let screen = await screenShowing(new RegExp(`^${a}\\s+█{7}░{17}\\s+31% \\| CHAPTERS \\| chapter 2/10 \\| ETA 2m \\d\\ds \\| Writing Chapter 2 of 10\\.\\.\\.`, 'm'));
    await ok(publish(server.url, a, { currentChapter: 5, message: 'Writing Chapter 5 of 10...' }));
    screen = await screenShowing(new RegExp(`^${a}\\s+█{12}░{12}\\s+51% \\| CHAPTERS \\| chapter 5/10 \\| ETA \\d+s \\| Writing Chapter 5`, 'm'));
    // One line per book, redrawn: no plain lines, and the older frame is gone.
    expect(screen.split('\n').filter((line) => line.startsWith(a))).toHaveLength(1);
    expect(screen).not.toContain('chapter 2/10');
    expect(screen).not.toMatch(/GENERATING CHAPTERS/);

    await ok(publish(server.url, b, { status: 'COMPLETE', totalChapters: 3 }));
    await ok(publish(server.url, a, { status: 'COMPLETE' }));
    screen = await screenShowing(/exit=\d+/);
    expect(screen).toMatch(/^exit=0$/m);
    expect(screen).toMatch(new RegExp(`^${a}\\s+█{24} 100% \\| COMPLETE \\| chapter 10/10 \\| ETA done \\| COMPLETE`, 'm'));
    expect(screen).toMatch(new RegExp(`^${b}\\s+█{24} 100% \\| COMPLETE \\| chapter 3/3 \\| ETA done \\| COMPLETE`, 'm'));
    expect(screen).toMatch(/^2 of 2 books COMPLETE$/m);
  });

  it('shows an ERROR on its bar and exits 1', async () => {
    const id = bookId('bar-err');
    await ok(publish(server.url, id, { status: 'GENERATING', generationStep: 'RESEARCH', message: 'Researching...' }));
    await tmux('send-keys', '-t', 'watch', `cd ${process.cwd()} && node ${BIN} watch ${id} --url ${server.url}; echo "exit=$?"`, 'Enter');
    await screenShowing(new RegExp(`^${id}\\s+█░{23}\\s+5% \\| RESEARCH \\| - \\| ETA \\S+ \\| Researching\\.\\.\\.`, 'm'));
    await ok(publish(server.url, id, { status: 'ERROR', error: 'quota exceeded' }));
    const screen = await screenShowing(/exit=\d+/);
    expect(screen).toMatch(new RegExp(`^${id}\\s+█░{23}\\s+5% \\| RESEARCH \\| - \\| ETA - \\| ERROR: quota exceeded`, 'm'));
    expect(screen).toMatch(new RegExp(`^${id}: ERROR: quota exceeded$`, 'm'));
    expect(screen).toMatch(/^exit=1$/m);
  });
});
