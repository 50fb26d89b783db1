import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import type { BookProgress } from '../progress/schema.js';
import type { ReadLatest } from './latest.js';
import { formatSseEvent } from './sse.js';

/** A state with its SSE frame, serialized once per version for every watcher of the process. */
export interface Update {
  readonly state: BookProgress;
  /** The state as JSON. */
  readonly json: string;
  /** A complete `progress` event with the version as id. */
  readonly frame: string;
}

export interface Watcher {
  /** Called with each newer state of the book, in version order; must not throw. */
  deliver(update: Update): void;
}

interface Topic {
  latest: Update | null;
  readonly watchers: Set<Watcher>;
  /** Joins still waiting for `ready`; the topic stays open while any are. */
  joining: number;
  ready: Promise<void>;
  unsubscribe: (() => void) | null;
}

export function toUpdate(state: BookProgress): Update {
  const json = JSON.stringify(state);
  return { state, json, frame: formatSseEvent({ event: 'progress', id: String(state.version), data: json }) };
}

/**
 * In-process fan-out: one broker subscription per watched book, whatever the number of
 * watchers, released when the last one leaves. Keeps the newest version seen per book and
 * hands watchers only versions newer than it (latest state wins).
 */
export class Hub {
  readonly #broker: Broker;
  readonly #readLatest: ReadLatest;
  readonly #log: Logger;
  readonly #topics = new Map<string, Topic>();
  /** Watchers of every book, behind one all-books broker subscription. */
  readonly #everyBook = new Set<Watcher>();
  #everyBookSubscription: Promise<() => void> | null = null;

  constructor(broker: Broker, readLatest: ReadLatest, log: Logger) {
    this.#broker = broker;
    this.#readLatest = readLatest;
    this.#log = log;
  }

  /**
   * Adds `watcher` to the book's topic once it is subscribed and has read the current state
   * (subscribe first, then read, so no update falls in between). Resolves to that state.
   */
  async join(bookId: string, watcher: Watcher): Promise<Update | null> {
    const topic = this.#topics.get(bookId) ?? this.#open(bookId);
    topic.joining++;
    try {
      await topic.ready;
    } finally {
      topic.joining--;
    }
    topic.watchers.add(watcher);
    return topic.latest;
  }

  leave(bookId: string, watcher: Watcher): void {
    const topic = this.#topics.get(bookId);
    if (!topic) return;
    topic.watchers.delete(watcher);
    this.#closeIfIdle(bookId, topic);
  }

  /** Adds a watcher of every book's updates; resolves once the broker subscription is in place. */
  async joinAll(watcher: Watcher): Promise<void> {
    this.#everyBook.add(watcher);
    this.#everyBookSubscription ??= this.#broker.subscribeAll((state) => {
      const update = toUpdate(state);
      for (const w of this.#everyBook) w.deliver(update);
    });
    await this.#everyBookSubscription;
  }

  leaveAll(watcher: Watcher): void {
    if (!this.#everyBook.delete(watcher) || this.#everyBook.size > 0) return;
    const subscription = this.#everyBookSubscription;
    this.#everyBookSubscription = null;
    void subscription?.then((unsubscribe) => unsubscribe());
  }

  /** Counts for metrics and leak checks. */
  stats(): { topics: number; watchers: number; everyBookWatchers: number } {
    let watchers = 0;
    for (const topic of this.#topics.values()) watchers += topic.watchers.size;
    return { topics: this.#topics.size, watchers, everyBookWatchers: this.#everyBook.size };
  }

  #open(bookId: string): Topic {
    const topic: Topic = { latest: null, watchers: new Set(), joining: 0, ready: Promise.resolve(), unsubscribe: null };
    this.#topics.set(bookId, topic);
    topic.ready = this.#subscribe(bookId, topic);
    return topic;
  }

  async #subscribe(bookId: string, topic: Topic): Promise<void> {
    try {
      topic.unsubscribe = await this.#broker.subscribe(bookId, (state) => this.#offer(topic, state));
      const found = await this.#readLatest(bookId);
      if (found) this.#offer(topic, found.state);
    } catch (error) {
      // Watchers still join: they get the state with the next update, or after Redis reconnects.
      this.#log.warn({ err: (error as Error).message, bookId }, 'could not read the current state for a new topic');
    }
  }

  #offer(topic: Topic, state: BookProgress): void {
    if (topic.latest !== null && state.version <= topic.latest.state.version) return;
    const update = toUpdate(state);
    topic.latest = update;
    for (const watcher of topic.watchers) watcher.deliver(update);
  }

  #closeIfIdle(bookId: string, topic: Topic): void {
    if (topic.watchers.size > 0 || topic.joining > 0) return;
    if (this.#topics.get(bookId) !== topic) return;
    this.#topics.delete(bookId);
    topic.unsubscribe?.();
    topic.unsubscribe = null;
  }
}
