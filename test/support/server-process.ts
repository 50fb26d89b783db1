import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { until, withTimeout } from './wait.js';

/** `node src/main.ts` as a real process: for kill -9, SIGTERM, and measuring a server alone. */
export class ServerProcess {
  readonly url: string;
  output = '';
  readonly #child: ChildProcess;
  readonly #exit: Promise<number | null>;

  private constructor(port: number, env: Record<string, string>) {
    this.url = `http://127.0.0.1:${port}`;
    this.#child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: {
        PATH: process.env.PATH ?? '',
        PORT: String(port),
        HOST: '127.0.0.1',
        DATA_DIR: mkdtempSync(join(tmpdir(), 'booksai-process-')),
        LOG_LEVEL: 'warn',
        // Sections at once: tests pace books with DEMO_STEP_MS, not with the writing pace.
        DEMO_TOKENS_PER_SECOND: '1000000000',
        // Test files run side by side on few cores: their stalls are not the overload under test
        // (test/server/overload.test.ts sets its own threshold).
        OVERLOAD_LOOP_DELAY_MS: '0',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.#child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.#exit = once(this.#child, 'exit').then(([code]) => code as number | null);
  }

  /**
   * Starts a server (on `port`, or a free one) and resolves once /healthz answers, within `ms`;
   * a server that does not is killed before the error is thrown.
   */
  static async start(env: Record<string, string>, port?: number, ms = 30_000): Promise<ServerProcess> {
    const server = new ServerProcess(port ?? (await freePort()), env);
    try {
      await until(
        async () => {
          if (server.#child.exitCode !== null) throw new Error(`the server exited with ${server.#child.exitCode}: ${server.output}`);
          return fetch(`${server.url}/healthz`).then((res) => res.ok, () => false);
        },
        ms,
        `the server at ${server.url} answers /healthz`,
      );
    } catch (error) {
      if (server.running) await server.stop('SIGKILL').catch(() => null);
      throw error;
    }
    return server;
  }

  get pid(): number {
    return this.#child.pid ?? 0;
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Sends `signal` without waiting for an exit: SIGSTOP freezes the process, SIGCONT wakes it. */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.#child.kill(signal);
  }

  /** Sends `signal` and resolves with the exit code (null when killed by the signal). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', ms = 15_000): Promise<number | null> {
    if (this.running) this.#child.kill(signal);
    return withTimeout(this.#exit, ms, `the server to exit after ${signal}`);
  }

  /** A Prometheus gauge or counter from /metrics. */
  async metric(name: string): Promise<number> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    if (!line) throw new Error(`no metric ${name}`);
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
}
