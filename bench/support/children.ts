/**
 * The orchestrator's side of its child processes: each runs under `ulimit -n 20000` (a process
 * here may hold 20,000 open files), speaks the line protocol of commands.ts, logs to a file,
 * and is killed when the orchestrator exits for any reason.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { EVENT_PREFIX } from './commands.js';

export const OPEN_FILES = 20_000;

export type BenchEvent = { evt: string } & Record<string, unknown>;

interface Waiter {
  evt: string;
  resolve: (event: BenchEvent) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export interface ChildOptions {
  name: string;
  /** Arguments to node (flags, then the script and its arguments). */
  nodeArgs: string[];
  env?: Record<string, string>;
  cwd: string;
  logDir: string;
}

const alive = new Set<ChildProcess>();

/** Kills every child still running (SIGKILL): for the orchestrator's exit paths. */
export function killAllChildren(): void {
  for (const child of alive) {
    if (child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
  alive.clear();
}

export class Child {
  readonly name: string;
  readonly pid: number;
  readonly exited: Promise<number | null>;
  readonly #process: ChildProcess;
  readonly #waiters: Waiter[] = [];
  readonly #unclaimed: BenchEvent[] = [];
  readonly #tail: string[] = [];
  #exitCode: number | null | undefined;

  constructor(options: ChildOptions) {
    this.name = options.name;
    // exec keeps one process, so `pid` is node's own, for /proc readings and signals.
    const script = `ulimit -n ${OPEN_FILES} 2>/dev/null; exec "$0" "$@"`;
    const child = spawn('sh', ['-c', script, process.execPath, ...options.nodeArgs], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    if (child.pid === undefined) throw new Error(`could not start ${options.name}`);
    this.pid = child.pid;
    this.#process = child;
    alive.add(child);
    const log = createWriteStream(join(options.logDir, `${options.name}.log`));
    child.stderr?.on('data', (chunk: Buffer) => {
      log.write(chunk);
      this.#remember(chunk.toString());
    });
    child.stdin?.on('error', () => {
      // The child exited first: its exit is reported through `exited`.
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith(EVENT_PREFIX)) return this.#dispatch(JSON.parse(line.slice(EVENT_PREFIX.length)) as BenchEvent);
      log.write(`${line}\n`);
      this.#remember(line);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        alive.delete(child);
        this.#exitCode = code;
        log.end();
        const error = new Error(`${this.name} exited (code ${code}, signal ${signal}); last output:\n${this.#tail.join('\n')}`);
        for (const waiter of this.#waiters.splice(0)) {
          clearTimeout(waiter.timer);
          waiter.reject(error);
        }
        resolve(code);
      });
    });
  }

  get running(): boolean {
    return this.#exitCode === undefined;
  }

  send(command: { cmd: string } & Record<string, unknown>): void {
    this.#process.stdin?.write(`${JSON.stringify(command)}\n`);
  }

  /** The next event named `evt` (an earlier unclaimed one first); rejects on timeout, child error or exit. */
  next(evt: string, timeoutMs: number): Promise<BenchEvent> {
    const index = this.#unclaimed.findIndex((event) => event.evt === evt || event.evt === 'error');
    if (index >= 0) {
      const [event] = this.#unclaimed.splice(index, 1);
      return event!.evt === 'error' ? Promise.reject(childError(this.name, event!)) : Promise.resolve(event!);
    }
    if (!this.running) return Promise.reject(new Error(`${this.name} is not running`));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        evt,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
          reject(new Error(`${this.name}: no '${evt}' within ${timeoutMs} ms; last output:\n${this.#tail.join('\n')}`));
        }, timeoutMs),
      };
      this.#waiters.push(waiter);
    });
  }

  /** Sends `command` and waits for its answer event. */
  request(command: { cmd: string } & Record<string, unknown>, evt: string, timeoutMs: number): Promise<BenchEvent> {
    const answer = this.next(evt, timeoutMs);
    this.send(command);
    return answer;
  }

  /** Asks the child to stop (SIGTERM, stdin closed), then kills it after `timeoutMs`. */
  async stop(timeoutMs = 15_000): Promise<number | null> {
    if (!this.running) return this.#exitCode ?? null;
    this.signal('SIGTERM');
    this.#process.stdin?.end();
    const timer = setTimeout(() => this.signal('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  signal(signal: NodeJS.Signals): void {
    try {
      process.kill(this.pid, signal);
    } catch {
      // Already gone.
    }
  }

  #dispatch(event: BenchEvent): void {
    const index = this.#waiters.findIndex((waiter) => waiter.evt === event.evt || event.evt === 'error');
    if (index < 0) {
      this.#unclaimed.push(event);
      return;
    }
    const [waiter] = this.#waiters.splice(index, 1);
    clearTimeout(waiter!.timer);
    if (event.evt === 'error') waiter!.reject(childError(this.name, event));
    else waiter!.resolve(event);
  }

  #remember(text: string): void {
    for (const line of text.split('\n')) {
      if (line === '') continue;
      this.#tail.push(line.slice(0, 300));
      if (this.#tail.length > 20) this.#tail.shift();
    }
  }
}

function childError(name: string, event: BenchEvent): Error {
  return new Error(`${name} failed${event.cmd ? ` on '${String(event.cmd)}'` : ''}: ${String(event.message)}`);
}
