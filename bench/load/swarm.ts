/**
 * A client swarm process: holds up to ~5,000 SSE (raw HTTP) or Socket.IO clients, measures
 * publish-to-receive latency from each state's `timestamp`, and checks that every client ends
 * on its book's latest version. Driven by the orchestrator's commands (see `handle`).
 */
import { emit, serveCommands } from '../support/commands.js';
import type { Command } from '../support/commands.js';
import { bookId } from '../support/fixtures.js';
import type { BookRange } from '../support/fixtures.js';
import { Histogram } from '../support/histogram.js';
import { SocketIoConnection } from './sio-connection.js';
import { SseConnection } from './sse-connection.js';
import { MAX_CLIENTS_PER_PROCESS } from './swarm-protocol.js';
import type { ChurnCommand, ClientKind, ConnectCommand } from './swarm-protocol.js';
import type { SseListener } from './sse-connection.js';

const MAX_LIFE_MS = 30 * 60_000;

interface Connection {
  close(): void;
}

const TIMESTAMP_FIELD = '"timestamp":';

function publishedAt(data: string): number {
  const at = data.indexOf(TIMESTAMP_FIELD);
  return at < 0 ? NaN : parseInt(data.slice(at + TIMESTAMP_FIELD.length, at + TIMESTAMP_FIELD.length + 16), 10);
}

function streamPath(book: string): string {
  return `/api/ai/progress/${book}/stream`;
}

function open(kind: ClientKind, host: string, port: number, book: string, listener: SseListener): Connection {
  return kind === 'sse' ? new SseConnection(host, port, streamPath(book), listener) : new SocketIoConnection(host, port, book, listener);
}

class Swarm {
  #connections: Connection[] = [];
  #lastVersion = new Float64Array(0);
  #books: BookRange = { prefix: '', first: 0, count: 1 };
  readonly #latency = new Histogram();
  #measuring = false;
  #received = 0;
  #dropped = 0;
  #firstReceiveAt = 0;
  #lastReceiveAt = 0;
  readonly #errors = new Map<string, number>();

  async connect(command: ConnectCommand): Promise<void> {
    if (command.clients > MAX_CLIENTS_PER_PROCESS) throw new Error(`at most ${MAX_CLIENTS_PER_PROCESS} clients per swarm process`);
    this.disconnect();
    this.#books = command.books;
    this.#lastVersion = new Float64Array(command.clients);
    const openMs = new Histogram();
    const firstEventMs = new Histogram();
    const started = performance.now();
    let opened = 0;
    let failed = 0;
    let next = 0;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const settle = () => {
      if (opened + failed === command.clients) done();
      else launch();
    };
    const launch = () => {
      while (next < command.clients && next - opened - failed < command.concurrency) {
        const index = next++;
        const t0 = performance.now();
        let isOpen = false;
        let gotEvent = false;
        const book = bookId(command.books, command.books.first + (index % command.books.count));
        this.#connections[index] = open(command.kind, command.host, command.port, book, {
          onOpen: () => {
            isOpen = true;
            opened++;
            openMs.record(performance.now() - t0);
            settle();
          },
          onEvent: (id, data) => {
            if (!gotEvent) {
              gotEvent = true;
              firstEventMs.record(performance.now() - t0);
            }
            this.#receive(index, id, data);
          },
          onClose: (error) => {
            this.#countError(error?.message ?? 'closed');
            if (isOpen) {
              this.#dropped++;
              return;
            }
            failed++;
            settle();
          },
        });
      }
    };
    if (command.clients === 0) done();
    else launch();
    const timer = setTimeout(done, command.timeoutMs);
    await finished;
    clearTimeout(timer);
    emit({
      evt: 'connected',
      opened,
      failed: command.clients - opened,
      elapsedMs: performance.now() - started,
      openMs: openMs.toSparse(),
      firstEventMs: firstEventMs.toSparse(),
      errors: Object.fromEntries(this.#errors),
    });
  }

  reset(): void {
    this.#latency.reset();
    this.#received = 0;
    this.#dropped = 0;
    this.#firstReceiveAt = 0;
    this.#lastReceiveAt = 0;
    this.#errors.clear();
    this.#measuring = true;
    emit({ evt: 'reset' });
  }

  /** `finalVersions[b]`: the latest version of book `books.first + b`. */
  report(finalVersions: number[]): void {
    let lost = 0;
    for (let i = 0; i < this.#lastVersion.length; i++) {
      const final = finalVersions[i % this.#books.count] ?? 0;
      if ((this.#lastVersion[i] ?? 0) < final) lost++;
    }
    emit({
      evt: 'report',
      clients: this.#lastVersion.length,
      received: this.#received,
      lost,
      dropped: this.#dropped,
      firstReceiveAt: this.#firstReceiveAt,
      lastReceiveAt: this.#lastReceiveAt,
      latency: this.#latency.toSparse(),
      errors: Object.fromEntries(this.#errors),
    });
  }

  disconnect(): void {
    this.#measuring = false;
    for (const connection of this.#connections) connection?.close();
    this.#connections = [];
  }

  /** Connects, waits for the first event (the current state), disconnects, again, in `concurrency` loops. */
  async churn(command: ChurnCommand): Promise<void> {
    const firstEventMs = new Histogram();
    const started = performance.now();
    const deadline = started + command.durationMs;
    let connects = 0;
    let failed = 0;
    let launched = 0;
    const loop = (): Promise<void> =>
      new Promise((resolve) => {
        const step = () => {
          if (performance.now() >= deadline || launched >= command.maxConnects) return resolve();
          const book = bookId(command.books, command.books.first + (launched++ % command.books.count));
          const t0 = performance.now();
          let ended = false;
          const connection = open(command.kind, command.host, command.port, book, {
            onOpen: () => {},
            onEvent: () => {
              if (ended) return;
              ended = true;
              firstEventMs.record(performance.now() - t0);
              connects++;
              connection.close();
              step();
            },
            onClose: (error) => {
              if (ended) return;
              ended = true;
              failed++;
              this.#countError(error?.message ?? 'closed');
              step();
            },
          });
        };
        step();
      });
    const loops = Array.from({ length: command.concurrency }, loop);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(loops), new Promise((resolve) => (timer = setTimeout(resolve, command.durationMs + 10_000)))]);
    clearTimeout(timer);
    emit({
      evt: 'churn',
      connects,
      failed,
      elapsedMs: performance.now() - started,
      firstEventMs: firstEventMs.toSparse(),
      errors: Object.fromEntries(this.#errors),
    });
  }

  #receive(index: number, id: string | null, data: string): void {
    const version = Number(id);
    if (version > (this.#lastVersion[index] ?? 0)) this.#lastVersion[index] = version;
    if (!this.#measuring) return;
    const now = Date.now();
    this.#received++;
    if (this.#firstReceiveAt === 0) this.#firstReceiveAt = now;
    this.#lastReceiveAt = now;
    const sent = publishedAt(data);
    if (Number.isFinite(sent)) this.#latency.record(now - sent);
  }

  #countError(message: string): void {
    const key = message.slice(0, 60);
    this.#errors.set(key, (this.#errors.get(key) ?? 0) + 1);
  }
}

const swarm = new Swarm();

async function handle(command: Command): Promise<void> {
  switch (command.cmd) {
    case 'connect':
      return swarm.connect(command as unknown as ConnectCommand);
    case 'reset':
      return swarm.reset();
    case 'report':
      return swarm.report(command.finalVersions as number[]);
    case 'disconnect':
      swarm.disconnect();
      return emit({ evt: 'disconnected' });
    case 'churn':
      return swarm.churn(command as unknown as ChurnCommand);
    default:
      throw new Error(`unknown swarm command ${command.cmd}`);
  }
}

serveCommands(handle, { maxLifeMs: MAX_LIFE_MS, onExit: () => swarm.disconnect() });
