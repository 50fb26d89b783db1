import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import { isTerminal } from '../progress/schema.js';
import type { BookProgress } from '../progress/schema.js';

/** Books whose last state this process remembers, per map (a few MB at most). */
const MAX_REMEMBERED_BOOKS = 10_000;

export interface UrgentStatesOptions {
  /** Writes one state now (Snapshotter.persistNow). */
  persist: (state: BookProgress) => Promise<unknown>;
  log: Logger;
}

/**
 * The states that must reach the database at once, whoever published them: a book's first
 * state (version 1, or the first after a terminal one this process saw) and terminal ones.
 * The tracker hands its own commits to `persistNow`; with `watch`, the commits of publishers
 * writing straight into Redis arrive on the every-book feed and are written as well. Every
 * watching process writes them (the upsert is guarded by version, so the copies are harmless);
 * the tracker's own are not written twice by the process that made them.
 */
export class UrgentStates {
  readonly #options: UrgentStatesOptions;
  /** The last status seen per book on the feed: terminal or not. */
  readonly #lastTerminal = new Map<string, boolean>();
  /** The highest version this process wrote per book, and that write. */
  readonly #written = new Map<string, { version: number; write: Promise<unknown> }>();
  readonly #inFlight = new Set<Promise<unknown>>();
  #unsubscribe: (() => void) | null = null;

  constructor(options: UrgentStatesOptions) {
    this.#options = options;
  }

  /** Writes `state` now (the tracker's commits): resolves once it is durable or queued. */
  async persistNow(state: BookProgress): Promise<void> {
    const seen = this.#written.get(state.bookId);
    // The feed may carry the commit here before the tracker hands it over: that write is this one.
    if (seen !== undefined && seen.version >= state.version) {
      await seen.write;
      return;
    }
    await this.#write(state);
  }

  /** Writes the urgent states of every commit `broker` carries, from any publisher, until close(). */
  async watch(broker: Pick<Broker, 'subscribeAll'>): Promise<void> {
    // A missed state is in the dirty set like every commit: the next round writes it.
    this.#unsubscribe = await broker.subscribeAll((state) => this.#onCommit(state), () => {});
  }

  /** Stops watching and waits for the writes under way. */
  async close(): Promise<void> {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    await Promise.allSettled([...this.#inFlight]);
  }

  #onCommit(state: BookProgress): void {
    const terminal = isTerminal(state.status);
    const wasTerminal = this.#lastTerminal.get(state.bookId);
    remember(this.#lastTerminal, state.bookId, terminal);
    if ((this.#written.get(state.bookId)?.version ?? 0) >= state.version) return;
    if (!(terminal || state.version === 1 || wasTerminal === true)) return;
    this.#write(state).catch((error: unknown) => {
      this.#options.log.warn({ err: (error as Error).message, bookId: state.bookId }, 'writing a published state at once failed; the next snapshot writes it');
    });
  }

  #write(state: BookProgress): Promise<unknown> {
    const write = this.#options.persist(state);
    remember(this.#written, state.bookId, { version: state.version, write });
    this.#inFlight.add(write);
    void write.finally(() => this.#inFlight.delete(write)).catch(() => {});
    return write;
  }
}

function remember<V>(map: Map<string, V>, bookId: string, value: V): void {
  map.delete(bookId);
  map.set(bookId, value);
  if (map.size > MAX_REMEMBERED_BOOKS) map.delete(map.keys().next().value as string);
}
