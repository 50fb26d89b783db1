/** The orchestrator's side of the client swarm: several swarm processes, one set of results. */
import { Child } from '../support/children.js';
import type { BenchEvent } from '../support/children.js';
import type { BookRange } from '../support/fixtures.js';
import { Histogram } from '../support/histogram.js';
import type { LatencySummary, SparseHistogram } from '../support/histogram.js';
import { MAX_CLIENTS_PER_PROCESS } from './swarm-protocol.js';
import type { ClientKind } from './swarm-protocol.js';
import type { BenchContext, Target } from '../support/targets.js';
import { HOST } from '../support/targets.js';

/** Clients connecting at once per swarm process. */
const CONNECT_CONCURRENCY = 250;

export interface ConnectResult {
  opened: number;
  failed: number;
  elapsedMs: number;
  /** Connections opened per second over the whole connect phase. */
  connectsPerSecond: number;
  openMs: LatencySummary;
  firstEventMs: LatencySummary;
  errors: Record<string, number>;
}

export interface DeliveryReport {
  clients: number;
  received: number;
  /** Clients not on their book's latest version. */
  lost: number;
  /** Connections that closed during the measurement. */
  dropped: number;
  firstReceiveAt: number;
  lastReceiveAt: number;
  latency: Histogram;
  errors: Record<string, number>;
}

export interface ChurnResult {
  connects: number;
  failed: number;
  connectsPerSecond: number;
  firstEventMs: LatencySummary;
  errors: Record<string, number>;
}

/** How a connect's clients spread over its books (see SwarmPool.connect). */
export type Layout = 'own' | 'one' | 'shared';

/** One slice of a connect: which books and how many clients one process takes. */
interface Slice {
  books: BookRange;
  clients: number;
}

export class SwarmPool {
  readonly #children: Child[];
  #slices: Slice[] = [];

  private constructor(children: Child[]) {
    this.#children = children;
  }

  static start(ctx: BenchContext, maxClients: number): SwarmPool {
    const count = Math.max(1, Math.ceil(maxClients / MAX_CLIENTS_PER_PROCESS));
    return new SwarmPool(
      Array.from(
        { length: count },
        (_, i) => new Child({ name: `swarm-${i}`, nodeArgs: ['--import', 'tsx', 'bench/load/swarm.ts'], cwd: ctx.root, logDir: ctx.logDir }),
      ),
    );
  }

  get pids(): number[] {
    return this.#children.map((child) => child.pid);
  }

  /**
   * Opens `clients` clients on `target`. Layout `one`: all watch `books.first`; `own`: client i
   * watches book `books.first + i` (books.count must equal clients); `shared`: clients spread
   * evenly over every book of the range, `clients / books.count` watchers each.
   */
  async connect(kind: ClientKind, target: Target, books: BookRange, clients: number, layout: Layout, timeoutMs: number): Promise<ConnectResult> {
    this.#slices = this.#split(books, clients, layout);
    const events = await Promise.all(
      this.#slices.map((slice, i) =>
        this.#children[i]!.request(
          { cmd: 'connect', kind, host: HOST, port: target.port, books: slice.books, clients: slice.clients, concurrency: CONNECT_CONCURRENCY, timeoutMs },
          'connected',
          timeoutMs + 10_000,
        ),
      ),
    );
    const openMs = new Histogram();
    const firstEventMs = new Histogram();
    let opened = 0;
    let elapsedMs = 0;
    for (const event of events) {
      opened += Number(event.opened);
      elapsedMs = Math.max(elapsedMs, Number(event.elapsedMs));
      openMs.merge(event.openMs as SparseHistogram);
      firstEventMs.merge(event.firstEventMs as SparseHistogram);
    }
    return {
      opened,
      failed: clients - opened,
      elapsedMs,
      connectsPerSecond: elapsedMs > 0 ? (1000 * opened) / elapsedMs : 0,
      openMs: openMs.summary(),
      firstEventMs: firstEventMs.summary(),
      errors: mergeErrors(events),
    };
  }

  async reset(): Promise<void> {
    await Promise.all(this.#active().map((child) => child.request({ cmd: 'reset' }, 'reset', 10_000)));
  }

  /** `finalVersions[i]`: latest version of book `books.first + i` of the last connect's range. */
  async report(finalVersions: number[]): Promise<DeliveryReport> {
    const events = await Promise.all(
      this.#slices.map((slice, i) => {
        const offset = slice.books.first - (this.#slices[0]?.books.first ?? 0);
        const finals = finalVersions.slice(offset, offset + slice.books.count);
        return this.#children[i]!.request({ cmd: 'report', finalVersions: finals }, 'report', 30_000);
      }),
    );
    const latency = new Histogram();
    const report: DeliveryReport = { clients: 0, received: 0, lost: 0, dropped: 0, firstReceiveAt: 0, lastReceiveAt: 0, latency, errors: mergeErrors(events) };
    for (const event of events) {
      report.clients += Number(event.clients);
      report.received += Number(event.received);
      report.lost += Number(event.lost);
      report.dropped += Number(event.dropped);
      const first = Number(event.firstReceiveAt);
      if (first > 0 && (report.firstReceiveAt === 0 || first < report.firstReceiveAt)) report.firstReceiveAt = first;
      report.lastReceiveAt = Math.max(report.lastReceiveAt, Number(event.lastReceiveAt));
      latency.merge(event.latency as SparseHistogram);
    }
    return report;
  }

  async disconnect(): Promise<void> {
    await Promise.all(this.#active().map((child) => child.request({ cmd: 'disconnect' }, 'disconnected', 30_000)));
    this.#slices = [];
  }

  /** Connect / first event / disconnect loops on every process for `durationMs`. */
  async churn(kind: ClientKind, target: Target, books: BookRange, concurrency: number, durationMs: number, maxConnects: number): Promise<ChurnResult> {
    const perProcess = Math.max(1, Math.ceil(concurrency / this.#children.length));
    const events = await Promise.all(
      this.#children.map((child) =>
        child.request(
          { cmd: 'churn', kind, host: HOST, port: target.port, books, concurrency: perProcess, durationMs, maxConnects: Math.ceil(maxConnects / this.#children.length) },
          'churn',
          durationMs + 30_000,
        ),
      ),
    );
    const firstEventMs = new Histogram();
    let connects = 0;
    let failed = 0;
    let elapsedMs = 0;
    for (const event of events) {
      connects += Number(event.connects);
      failed += Number(event.failed);
      elapsedMs = Math.max(elapsedMs, Number(event.elapsedMs));
      firstEventMs.merge(event.firstEventMs as SparseHistogram);
    }
    return {
      connects,
      failed,
      connectsPerSecond: elapsedMs > 0 ? (1000 * connects) / elapsedMs : 0,
      firstEventMs: firstEventMs.summary(),
      errors: mergeErrors(events),
    };
  }

  async stop(): Promise<void> {
    await Promise.all(this.#children.map((child) => child.stop(5_000)));
  }

  #active(): Child[] {
    return this.#children.slice(0, Math.max(1, this.#slices.length));
  }

  #split(books: BookRange, clients: number, layout: Layout): Slice[] {
    const parts = this.#children.length;
    if (clients > parts * MAX_CLIENTS_PER_PROCESS) throw new Error(`${clients} clients need more than ${parts} swarm processes`);
    if (layout === 'own' && books.count !== clients) throw new Error('one book per client: books.count must equal clients');
    if (layout === 'shared' && clients % (parts * books.count) !== 0) throw new Error(`shared books: ${clients} clients do not spread evenly over ${parts} processes and ${books.count} books`);
    const slices: Slice[] = [];
    let first = books.first;
    for (let i = 0; i < parts; i++) {
      const n = Math.floor(clients / parts) + (i < clients % parts ? 1 : 0);
      // Shared: every process watches the whole range (its client j on book first + j % count), so its report covers every book.
      const range = layout === 'one' ? { ...books, count: 1 } : layout === 'shared' ? books : { prefix: books.prefix, first, count: Math.max(1, n) };
      slices.push({ clients: n, books: range });
      first += n;
    }
    return slices;
  }
}

function mergeErrors(events: BenchEvent[]): Record<string, number> {
  const merged: Record<string, number> = {};
  for (const event of events) {
    for (const [message, n] of Object.entries((event.errors ?? {}) as Record<string, number>)) merged[message] = (merged[message] ?? 0) + n;
  }
  return merged;
}
