/** HTTP load from autocannon, run as its own process (`-j`: one JSON result on stdout). */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { OPEN_FILES } from './children.js';

const AUTOCANNON = createRequire(import.meta.url).resolve('autocannon/autocannon.js');

export interface LoadOptions {
  connections: number;
  durationSec: number;
  headers?: Record<string, string>;
}

export interface LoadResult {
  requests: number;
  requestsPerSecond: number;
  /** Latency in ms (autocannon's resolution is 1 ms). */
  p50: number;
  p99: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
}

interface AutocannonJson {
  duration: number;
  errors: number;
  timeouts: number;
  requests: { total: number };
  latency: { p50: number; p99: number };
  statusCodeStats?: Record<string, { count: number }>;
}

/** Runs autocannon against `url` without pipelining; rejects if it does not finish in time. */
export function runLoad(url: string, options: LoadOptions): Promise<LoadResult> {
  const args = ['-c', String(options.connections), '-p', '1', '-d', String(options.durationSec), '-j'];
  for (const [name, value] of Object.entries(options.headers ?? {})) args.push('-H', `${name}=${value}`);
  args.push(url);
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', `ulimit -n ${OPEN_FILES} 2>/dev/null; exec "$0" "$@"`, process.execPath, AUTOCANNON, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2_000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), (options.durationSec + 30) * 1000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`autocannon exited with ${code}: ${stderr}`));
      try {
        const result = JSON.parse(stdout) as AutocannonJson;
        const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([status, s]) => [status, s.count]));
        resolve({
          requests: result.requests.total,
          requestsPerSecond: result.requests.total / result.duration,
          p50: result.latency.p50,
          p99: result.latency.p99,
          errors: result.errors,
          timeouts: result.timeouts,
          statusCodes,
        });
      } catch (error) {
        reject(new Error(`autocannon printed no JSON result: ${(error as Error).message}; ${stderr}`));
      }
    });
  });
}
