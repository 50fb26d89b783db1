/**
 * HTTP load from wrk (Debian's `wrk`, a C client), as its own process: one thread, so the
 * machine's other core is left to the target and the load generator is not what is measured.
 */
import { spawn } from 'node:child_process';
import { OPEN_FILES } from '../support/children.js';

export interface LoadOptions {
  connections: number;
  durationSec: number;
  headers?: Record<string, string>;
}

export interface LoadResult {
  requests: number;
  requestsPerSecond: number;
  /** Latency in ms. */
  p50: number;
  p99: number;
  errors: number;
  timeouts: number;
  /** wrk tells 2xx/3xx answers from the rest, not each status. */
  statusCodes: Record<string, number>;
}

const WRK_THREADS = 1;

/** Runs wrk against `url` (one request at a time per connection); rejects if it does not finish in time. */
export function runLoad(url: string, options: LoadOptions): Promise<LoadResult> {
  const args = ['-t', String(WRK_THREADS), '-c', String(options.connections), '-d', `${options.durationSec}s`, '--latency'];
  for (const [name, value] of Object.entries(options.headers ?? {})) args.push('-H', `${name}: ${value}`);
  args.push(url);
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', `ulimit -n ${OPEN_FILES} 2>/dev/null; exec wrk "$@"`, 'wrk', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2_000)));
    child.once('error', (error) => reject(new Error(`wrk could not run (apt-get install wrk): ${error.message}`)));
    const timer = setTimeout(() => child.kill('SIGKILL'), (options.durationSec + 30) * 1000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`wrk exited with ${code} (is Debian's wrk installed?): ${stderr}${stdout}`));
      try {
        resolve(parseWrk(stdout, options.durationSec));
      } catch (error) {
        reject(new Error(`${(error as Error).message}: ${stdout}`));
      }
    });
  });
}

/** wrk's text report: requests, duration, the latency distribution, errors. */
export function parseWrk(text: string, durationSec: number): LoadResult {
  const number = (pattern: RegExp): number | null => {
    const match = pattern.exec(text);
    return match ? Number(match[1]) : null;
  };
  const requests = number(/(\d+) requests in/);
  if (requests === null) throw new Error('wrk printed no request count');
  const seconds = durationOf(/requests in ([\d.]+\w+),/.exec(text)?.[1]) ?? durationSec;
  const other = number(/Non-2xx or 3xx responses: (\d+)/) ?? 0;
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    requests,
    requestsPerSecond: requests / seconds,
    p50: latencyMs(/\s50%\s+([\d.]+\w+)/.exec(text)?.[1]),
    p99: latencyMs(/\s99%\s+([\d.]+\w+)/.exec(text)?.[1]),
    errors: errors ? Number(errors[1]) + Number(errors[2]) + Number(errors[3]) : 0,
    timeouts: errors ? Number(errors[4]) : 0,
    statusCodes: other > 0 ? { '2xx/3xx': requests - other, other } : { '2xx/3xx': requests },
  };
}

/** `1.23ms`, `850.00us`, `1.02s` → ms. */
function latencyMs(raw: string | undefined): number {
  const match = raw === undefined ? null : /^([\d.]+)(us|ms|s|m)$/.exec(raw);
  if (!match) throw new Error(`wrk printed no latency ${raw ?? ''}`);
  const scale: Record<string, number> = { us: 0.001, ms: 1, s: 1_000, m: 60_000 };
  return Math.round(Number(match[1]) * (scale[match[2] as string] as number) * 100) / 100;
}

/** `10.00s`, `1.00m` → seconds. */
function durationOf(raw: string | undefined): number | null {
  const match = raw === undefined ? null : /^([\d.]+)(ms|s|m)$/.exec(raw);
  if (!match) return null;
  return Number(match[1]) * ({ ms: 0.001, s: 1, m: 60 } as Record<string, number>)[match[2] as string]!;
}
