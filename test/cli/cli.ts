import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { withTimeout } from '../support/wait.js';

/** The command line as a user runs it: `node bin/booksai-progress.js …`, with only PATH and `env` set. */
export const BIN = 'bin/booksai-progress.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A running `booksai-progress` process: its output so far, and its exit. */
export class CliProcess {
  stdout = '';
  stderr = '';
  readonly #child: ChildProcess;
  readonly exited: Promise<number | null>;

  constructor(args: string[], env: Record<string, string | undefined> = {}) {
    this.#child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child.stdout?.on('data', (chunk: Buffer) => (this.stdout += chunk.toString()));
    this.#child.stderr?.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = once(this.#child, 'exit').then(([code]) => code as number | null);
  }

  /** Resolves with the exit code and the whole output, or rejects after `ms`. */
  async result(ms = 30_000): Promise<CliResult> {
    const code = await withTimeout(this.exited, ms, `booksai-progress to exit (stdout: ${this.stdout}; stderr: ${this.stderr})`);
    // 'exit' may come before the pipes' last chunks: wait for them to close.
    await Promise.all([this.#child.stdout, this.#child.stderr].map((s) => (s && !s.closed ? once(s, 'close') : undefined)));
    return { code, stdout: this.stdout, stderr: this.stderr };
  }

  /** Resolves once stdout (or stderr) matches `pattern`; rejects after `ms`. */
  waitFor(pattern: RegExp, ms = 20_000, stream: 'stdout' | 'stderr' = 'stdout'): Promise<void> {
    const source = stream === 'stdout' ? this.#child.stdout : this.#child.stderr;
    const seen = new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!pattern.test(this[stream])) return;
        source?.off('data', onData);
        this.exited.then(undefined, () => {});
        resolve();
      };
      // Listeners run in order: ours after the one that appends the chunk.
      const onData = () => check();
      source?.on('data', onData);
      void this.exited.then(() => {
        source?.off('data', onData);
        if (!pattern.test(this[stream])) reject(new Error(`booksai-progress exited before ${stream} matched ${pattern}: ${this[stream]}`));
      });
      check();
    });
    return withTimeout(seen, ms, `booksai-progress ${stream} to match ${pattern} (stdout: ${this.stdout}; stderr: ${this.stderr})`);
  }

  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
  }
}

/** Runs `booksai-progress args…` to its end. */
export function cli(args: string[], env: Record<string, string | undefined> = {}, ms?: number): Promise<CliResult> {
  return new CliProcess(args, env).result(ms);
}
