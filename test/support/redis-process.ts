import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { freePort } from './ports.js';
import { until } from './wait.js';
import { Redis } from 'ioredis';

/**
 * A redis-server of the test's own, on a free port, without persistence: stopping it and
 * starting it again gives an empty Redis, as a production restart without AOF/RDB does.
 */
export class RedisProcess {
  readonly port: number;
  readonly #password: string | null;
  readonly #args: readonly string[];
  #child: ChildProcess | null = null;

  private constructor(port: number, password: string | null, args: readonly string[]) {
    this.port = port;
    this.#password = password;
    this.#args = args;
  }

  /**
   * `password`: start with requirepass, as a production Redis would. `args`: more options,
   * e.g. `['--maxmemory', '3mb', '--maxmemory-policy', 'noeviction']`.
   */
  static async start(password: string | null = null, args: readonly string[] = []): Promise<RedisProcess> {
    const redis = new RedisProcess(await freePort(), password, args);
    await redis.start();
    return redis;
  }

  get url(): string {
    return this.#password === null ? `redis://127.0.0.1:${this.port}` : `redis://:${this.#password}@127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.#child) return;
    const auth = this.#password === null ? [] : ['--requirepass', this.#password];
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...auth, ...this.#args], {
      stdio: 'ignore',
    });
    this.#child = child;
    await until(() => this.#ping(), 10_000, `redis-server on port ${this.port} answers`);
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = null;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  async #ping(): Promise<boolean> {
    const client = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await client.connect();
      return (await client.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      client.disconnect();
    }
  }
}
