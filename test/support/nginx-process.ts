import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { until, withTimeout } from './wait.js';

/** The committed configuration: docker-compose.yml mounts this very file. */
export const NGINX_CONF = 'deploy/nginx.conf';
/** Debian installs it in /usr/sbin, which a CI's PATH may lack. */
const NGINX_BIN = process.env.NGINX_PATH ?? (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx');

/**
 * Debian's nginx in the foreground (`daemon off`), run with deploy/nginx.conf where only the
 * upstream address, the listen address and the log folder are replaced; stopped by its pid.
 */
export class NginxProcess {
  readonly port: number;
  readonly folder: string;
  readonly #child: ChildProcess;
  readonly #exit: Promise<unknown>;
  output = '';

  private constructor(port: number, folder: string, child: ChildProcess) {
    this.port = port;
    this.folder = folder;
    this.#child = child;
    this.#exit = once(child, 'exit');
    child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
  }

  /** Proxies `listenHost`:free port to `upstream` (`127.0.0.1:1234`); `edit` changes the configuration further (a misconfigured proxy). */
  static async start(upstream: string, listenHost = '127.0.0.1', edit: (conf: string) => string = (conf) => conf): Promise<NginxProcess> {
    const port = await freePort();
    const folder = mkdtempSync(join(tmpdir(), 'booksai-nginx-'));
    const conf = readFileSync(NGINX_CONF, 'utf8');
    const templated = conf
      .replace('server booksai-progress:3000;', `server ${upstream};`)
      .replace('listen 80;', `listen ${listenHost}:${port};`)
      .replaceAll('/var/log/nginx/', `${folder}/`);
    if (templated === conf || !templated.includes(upstream) || !templated.includes(`${listenHost}:${port}`)) throw new Error(`${NGINX_CONF} no longer has the lines this test replaces`);
    writeFileSync(join(folder, 'nginx.conf'), edit(templated));
    const child = spawn(NGINX_BIN, ['-c', join(folder, 'nginx.conf'), '-p', folder, '-e', join(folder, 'error.log'), '-g', `daemon off; pid ${folder}/nginx.pid;`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const nginx = new NginxProcess(port, folder, child);
    await until(
      () => {
        if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${nginx.output}`);
        return new Promise<boolean>((resolve) => {
          const socket = connect(port, listenHost, () => {
            socket.destroy();
            resolve(true);
          });
          socket.on('error', () => resolve(false));
        });
      },
      10_000,
      `nginx listens on ${listenHost}:${port}`,
    );
    return nginx;
  }

  get log(): string {
    return `${this.output}${readFileSync(join(this.folder, 'error.log'), 'utf8')}`;
  }

  /** Fast shutdown (SIGTERM to the master, which ends its workers), SIGKILL if it lingers. */
  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#child.kill('SIGTERM');
    try {
      await withTimeout(this.#exit, 5_000, 'nginx to stop');
    } catch {
      this.#child.kill('SIGKILL');
      await this.#exit;
    }
  }
}
