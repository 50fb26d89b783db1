import type { Logger } from 'pino';
import type { Broker } from '../broker/broker.js';
import { isTerminal } from '../progress/schema.js';
import type { BookProgress } from '../progress/schema.js';
import type { ReadLatest } from './latest.js';
import { EncodedEvent, formatSseEvent } from './sse.js';

/**
 * One version of a book's state, as every watcher of the process gets it, built once per version.
 * The newest one of each book lives until the next: it keeps the JSON and the fields watchers
 * decide on, and no Buffer (see `TickCache`).
 */
export class Update {
  readonly bookId: string;
  readonly version: number;
  /** COMPLETE or ERROR: the book's last state. */
  readonly terminal: boolean;
  readonly json: string;
  #pollBody: Buffer | null = null;

  /** `json`: the state as JSON, when the caller already has it. */
  constructor(state: BookProgress, json = JSON.stringify(state)) {
    this.bookId = state.bookId;
    this.version = state.version;
    this.terminal = isTerminal(state.status);
    this.json = json;
  }

  /** The state, parsed again on each call: only the database fallback needs all of it. */
  get state(): BookProgress {
    return JSON.parse(this.json) as BookProgress;
  }

  /** A complete `progress` event with the version as id. */
  get frame(): EncodedEvent {
    return frames.get(this, encodeFrame);
  }

  /** The same event without an id, for every-book streams. */
  get frameWithoutId(): EncodedEvent {
    return framesWithoutId.get(this, encodeFrameWithoutId);
  }

  /** The WebSocket message, `{ type: 'progress', data: state }`. */
  get wsMessage(): Buffer {
    return wsMessages.get(this, encodeWsMessage);
  }

  /** The poll endpoint's answer, `{ success: true, data: state }`, kept for every poll of this version. */
  get pollBody(): Buffer {
    return (this.#pollBody ??= Buffer.from(`{"success":true,"data":${this.json}}`));
  }
}

/**
 * Encodings built in the current tick, shared by every client of an update: a batch of Redis
 * messages is written to all streams in one tick (see ProgressStream), and an every-book stream
 * writes the whole batch before the next stream does. Cleared when the tick ends, not kept on the
 * update: an update kept as its book's newest would keep the Buffer too, and V8 pays for each
 * such Buffer in every GC (at 10,000 updates/s that set off a full GC every few seconds, where
 * JSON strings kept alone set off none).
 */
class TickCache<T> {
  readonly #entries = new Map<Update, T>();

  get(update: Update, encode: (update: Update) => T): T {
    let value = this.#entries.get(update);
    if (value === undefined) {
      if (this.#entries.size === 0) process.nextTick(() => this.#entries.clear());
      value = encode(update);
      this.#entries.set(update, value);
    }
    return value;
  }
}

const frames = new TickCache<EncodedEvent>();
const framesWithoutId = new TickCache<EncodedEvent>();
const wsMessages = new TickCache<Buffer>();
const encodeFrame = (u: Update) => new EncodedEvent(formatSseEvent({ event: 'progress', id: String(u.version), data: u.json }));
const encodeFrameWithoutId = (u: Update) => new EncodedEvent(formatSseEvent({ event: 'progress', data: u.json }));
const encodeWsMessage = (u: Update) => Buffer.from(`{"type":"progress","data":${u.json}}`);

export interface Watcher {
  /** Called with each newer state of the book, in version order; must not throw. */
  deliver(update: Update): void;
  /** Every-book watchers: states may have been missed (Redis reconnected); resync from scratch. */
  gap?(): void;
}

interface Topic {
  latest: Update | null;
  /** Subscribed and read: `latest` follows every commit from here on (while the broker is live). */
  ready: boolean;
  readonly watchers: Set<Watcher>;
  /** Joins still waiting for `ready`; the topic stays open while any are. */
  joining: number;
  setup: Promise<void>;
  unsubscribe: (() => void) | null;
}

/** How long a polled book stays followed after its last poll; legacy pollers ask every 3 s. */
export const POLL_LEASE_MS = 30_000;

/** The member that keeps a polled book's topic open: receives nothing, only holds a place. */
const POLLERS: Watcher = { deliver() {} };

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
  /** Polled books and when their lease ends; one sweep for all of them. */
  readonly #polled = new Map<string, number>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(broker: Broker, readLatest: ReadLatest, log: Logger) {
    this.#broker = broker;
    this.#readLatest = readLatest;
    this.#log = log;
    this.#sweeper = setInterval(() => this.#sweepPolled(), POLL_LEASE_MS / 3).unref();
  }

  /**
   * The latest state of a book this process follows live, without a round trip (renewing the
   * poll lease); null otherwise, and then the caller reads it elsewhere.
   */
  polled(bookId: string): Update | null {
    const topic = this.#topics.get(bookId);
    if (!topic?.ready || topic.latest === null || !this.#broker.isLive()) return null;
    this.follow(bookId);
    return topic.latest;
  }

  /**
   * Follows a book that is being polled for POLL_LEASE_MS after the last poll, so the next polls
   * are answered from memory. Called only for books that exist, so unknown ids cost nothing.
   */
  follow(bookId: string): void {
    const following = this.#polled.has(bookId);
    this.#polled.set(bookId, Date.now() + POLL_LEASE_MS);
    if (!following) void this.join(bookId, POLLERS);
  }

  /** The newest state this process has received for a book it follows, live or not; else null. */
  lastKnown(bookId: string): BookProgress | null {
    return this.#topics.get(bookId)?.latest?.state ?? null;
  }

  close(): void {
    clearInterval(this.#sweeper);
    for (const bookId of this.#polled.keys()) this.leave(bookId, POLLERS);
    this.#polled.clear();
  }

  /**
   * Adds `watcher` to the book's topic once it is subscribed and has read the current state
   * (subscribe first, then read, so no update falls in between). Resolves to that state.
   */
  async join(bookId: string, watcher: Watcher): Promise<Update | null> {
    const topic = this.#topics.get(bookId) ?? this.#open(bookId);
    topic.joining++;
    try {
      await topic.setup;
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
    this.#everyBookSubscription ??= this.#broker.subscribeAll(
      (state, json) => {
        const update = new Update(state, json);
        for (const w of this.#everyBook) w.deliver(update);
      },
      () => {
        for (const w of [...this.#everyBook]) w.gap?.();
      },
    );
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
    const topic: Topic = { latest: null, ready: false, watchers: new Set(), joining: 0, setup: Promise.resolve(), unsubscribe: null };
    this.#topics.set(bookId, topic);
    topic.setup = this.#subscribe(bookId, topic);
    return topic;
  }

  async #subscribe(bookId: string, topic: Topic): Promise<void> {
    try {
      topic.unsubscribe = await this.#broker.subscribe(bookId, (state, json) => {
        topic.ready = true;
        this.#offer(topic, state, json);
      });
      const found = await this.#readLatest(bookId);
      if (found) this.#offer(topic, found.state);
      if (found === null || found.source !== 'database') topic.ready = true;
    } catch (error) {
      // Watchers still join: they get the state with the next update, or after Redis reconnects.
      this.#log.warn({ err: (error as Error).message, bookId }, 'could not read the current state for a new topic');
    }
  }

  #sweepPolled(): void {
    const now = Date.now();
    for (const [bookId, until] of this.#polled) {
      if (until > now) continue;
      this.#polled.delete(bookId);
      this.leave(bookId, POLLERS);
    }
  }

  #offer(topic: Topic, state: BookProgress, json?: string): void {
    if (topic.latest !== null && state.version <= topic.latest.version) return;
    const update = new Update(state, json);
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
