import { createWriteStream, readFileSync } from 'node:fs';
import type { WriteStream } from 'node:fs';

/** The faults the nemesis draws (chaos/nemesis.ts). */
export type FaultKind =
  | 'server-kill'
  | 'server-term'
  | 'server-stop'
  | 'redis-restart'
  | 'redis-blackhole'
  | 'redis-maxmemory'
  | 'master-kill'
  | 'postgres-cut'
  | 'postgres-blackhole'
  | 'postgres-lock'
  | 'slow-network';

/** How a request was answered: an HTTP status, or the client-side error when none came. */
export interface Answer {
  /** Which server instance (0-based) was asked; absent for the outside worker's Redis commits. */
  server?: number;
  status: number | null;
  ms: number;
  retryAfter?: string | null;
  error?: string;
}

/** One observed state of a book: what the checker compares. */
export interface Seen {
  version: number;
  status: string;
  message: string;
}

/**
 * One line of the history file. `t` is ms since the campaign started, taken when the
 * observation completed (`ms` before it, for answers, is when it was asked).
 */
export type HistoryEvent =
  | { t: number; type: 'start'; seed: number; mode: string; durationMs: number; boundMs: number; rssLimitMb: number; servers: number }
  | { t: number; type: 'fault'; phase: 'start' | 'end'; id: number; kind: FaultKind; target?: string }
  | { t: number; type: 'book'; bookId: string; source: 'demo' | 'http' | 'worker'; chapters?: number; sectionsPerChapter?: number; title?: string }
  | ({ t: number; type: 'publish'; via: 'http' | 'redis'; bookId: string; state?: Seen } & Answer)
  | ({ t: number; type: 'create'; bookId?: string } & Answer)
  | ({ t: number; type: 'poll'; poller: string; bookId: string; state?: Seen } & Answer)
  | { t: number; type: 'event'; watcher: string; session: number; server: number; bookId: string; state: Seen }
  | { t: number; type: 'watch-error'; watcher: string; server: number; code?: number; message: string }
  | { t: number; type: 'log'; server: number; line: string }
  | { t: number; type: 'nemesis-error'; id: number; kind: FaultKind; message: string }
  | { t: number; type: 'rss'; server: number; mb: number }
  /** The campaign's own process was stalled `ms` (its timers ran late): the machine is loaded, every latency it measured meanwhile grew. */
  | { t: number; type: 'lag'; ms: number }
  | { t: number; type: 'final'; bookId: string; redis: Seen | null; postgres: Seen | null; chapters?: FinalChapter[]; expectedChapters?: number }
  | { t: number; type: 'final-watcher'; watcher: string; connected: boolean; last: Record<string, Seen> }
  | { t: number; type: 'end'; settledMs: number };

export interface FinalChapter {
  number: number;
  /** Whether the content is the generator's for this chapter. */
  matches: boolean;
  rewritten: boolean;
}

/** An event without its time: `record` stamps it. */
export type Untimed<E> = E extends unknown ? Omit<E, 't'> & { t?: number } : never;

/** Appends each event to a JSON-lines file as it happens (and keeps it in memory for the checker). */
export class HistoryWriter {
  readonly path: string;
  readonly events: HistoryEvent[] = [];
  readonly #started = performance.now();
  readonly #file: WriteStream;

  constructor(path: string) {
    this.path = path;
    this.#file = createWriteStream(path);
  }

  /** Ms since the campaign started. */
  now(): number {
    return Math.round(performance.now() - this.#started);
  }

  record(event: Untimed<HistoryEvent>): void {
    const full = { ...event, t: event.t ?? this.now() } as HistoryEvent;
    this.events.push(full);
    this.#file.write(`${JSON.stringify(full)}\n`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#file.end(resolve));
  }
}

export function readHistory(path: string): HistoryEvent[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as HistoryEvent);
}

export const TERMINAL = new Set(['COMPLETE', 'ERROR']);
