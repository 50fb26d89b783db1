import type { Logger } from 'pino';
import type { Broker } from '../../broker/broker.js';
import { FaultLog } from '../../fault-log.js';
import type { BookProgress } from '../../progress/schema.js';
import { EncodedState } from './encoded-state.js';
import type { FindNewest } from './newest-state.js';

const POLL_BODY_HEAD = Buffer.from('{"success":true,"data":');
const POLL_BODY_TAIL = Buffer.from('}');

/**
 * A book's newest state as its topic keeps it from one update to the next: the version, and the
 * JSON written over the previous one in a buffer reused while it fits, not an EncodedState per
 * version (why: docs/performance.md, "Topics keep no EncodedState").
 */
class TopicState {
  readonly #bookId: string;
  #known = false;
  #version = 0;
  #terminal = false;
  #tenant: string | undefined = undefined;
  #json = Buffer.alloc(0);
  #jsonBytes = 0;
  #pollBody: Buffer | null = null;

  constructor(bookId: string) {
    this.#bookId = bookId;
  }

  get known(): boolean {
    return this.#known;
  }

  get version(): number {
    return this.#version;
  }

  get tenant(): string | undefined {
    return this.#tenant;
  }

  /** Whether `version` is newer than the newest one kept (any is, before the first). */
  isNewer(version: number): boolean {
    return !this.#known || version > this.#version;
  }

  set(update: EncodedState): void {
    const bytes = Buffer.byteLength(update.json);
    // With room to spare: a state's message changes length from one update to the next.
    if (bytes > this.#json.length) this.#json = Buffer.allocUnsafeSlow(Math.ceil(bytes * 1.25));
    this.#json.write(update.json, 0, 'utf8');
    this.#jsonBytes = bytes;
    this.#version = update.version;
    this.#terminal = update.terminal;
    this.#tenant = update.tenant;
    this.#known = true;
    this.#pollBody = null;
  }

  /** The newest state, encoded anew (for a watcher that joins); null before the first. */
  get encoded(): EncodedState | null {
    if (!this.#known) return null;
    return new EncodedState(this.#bookId, this.#version, this.#terminal, this.#json.toString('utf8', 0, this.#jsonBytes), this.#tenant);
  }

  /** The poll endpoint's answer, `{ success: true, data: state }`, kept for every poll of this version. */
  get pollBody(): Buffer {
    return (this.#pollBody ??= Buffer.concat([POLL_BODY_HEAD, this.#json.subarray(0, this.#jsonBytes), POLL_BODY_TAIL]));
  }
}

/** What the poll endpoint answers from memory: a version and its body, and whose book it is. */
export interface PolledState {
  readonly version: number;
  readonly tenant: string | undefined;
  readonly pollBody: Buffer;
}

export interface Watcher {
  /** Called with each newer state of the book, in version order; must not throw. */
  deliver(update: EncodedState): void;
  /** Every-book watchers: states may have been missed (Redis reconnected); resync from scratch. */
  gap?(): void;
}

interface Topic {
  readonly newest: TopicState;
  /** Subscribed and read: `newest` follows every commit from here on (while the broker is live). */
  ready: boolean;
  readonly watchers: Set<Watcher>;
  /** Joins still waiting for `ready`; the topic stays open while any are. */
  joining: number;
  setup: Promise<void>;
  unsubscribe: (() => void) | null;
}

/** What join() found: the book's current state, unless the watcher was refused it. */
export interface Joined {
  readonly admitted: boolean;
  readonly current: EncodedState | null;
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
  readonly #findNewest: FindNewest;
  readonly #log: Logger;
  readonly #topics = new Map<string, Topic>();
  /** Watchers of every book, behind one all-books broker subscription. */
  readonly #everyBook = new Set<Watcher>();
  #everyBookSubscription: Promise<() => void> | null = null;
  /** Polled books and when their lease ends; one sweep for all of them. */
  readonly #polled = new Map<string, number>();
  readonly #sweeper: NodeJS.Timeout;
  /** Polls answered, per minute of the clock: this one's so far and the last one's (the operator view). */
  #polls = { minute: 0, current: 0, previous: 0 };

  constructor(broker: Broker, findNewest: FindNewest, log: Logger) {
    this.#broker = broker;
    this.#findNewest = findNewest;
    this.#log = log;
    this.#sweeper = setInterval(() => this.#sweepPolled(), POLL_LEASE_MS / 3).unref();
  }

  /**
   * The newest state of a book this process follows live, without a round trip; null otherwise,
   * and then the caller reads it elsewhere. A caller that answers with it calls follow() too.
   */
  polled(bookId: string): PolledState | null {
    const topic = this.#topics.get(bookId);
    if (!topic?.ready || !topic.newest.known || !this.#broker.isLive()) return null;
    return topic.newest;
  }

  /**
   * Follows a book that is being polled for POLL_LEASE_MS after the last poll, so the next polls
   * are answered from memory. Called only for books that exist, so unknown ids cost nothing.
   */
  follow(bookId: string): void {
    const following = this.#polled.has(bookId);
    const now = Date.now();
    this.#polled.set(bookId, now + POLL_LEASE_MS);
    this.#pollMinute(now).current++;
    if (!following) void this.join(bookId, POLLERS);
  }

  /** The newest state this process has received for a book it follows, live or not; else null. */
  lastKnown(bookId: string): BookProgress | null {
    return this.#topics.get(bookId)?.newest.encoded?.state ?? null;
  }

  close(): void {
    clearInterval(this.#sweeper);
    for (const bookId of this.#polled.keys()) this.leave(bookId, POLLERS);
    this.#polled.clear();
  }

  /**
   * Adds `watcher` to the book's topic once it is subscribed and has read the current state
   * (subscribe first, then read, so no update falls in between), if `admits` accepts that state
   * (null: none yet); in the same step, so no update reaches a watcher it would refuse.
   * Resolves to that state, and whether the watcher was added.
   */
  async join(bookId: string, watcher: Watcher, admits: (current: EncodedState | null) => boolean = () => true): Promise<Joined> {
    const topic = this.#topics.get(bookId) ?? this.#open(bookId);
    topic.joining++;
    try {
      await topic.setup;
    } finally {
      topic.joining--;
    }
    const current = topic.newest.encoded;
    if (!admits(current)) {
      this.#closeIfIdle(bookId, topic);
      return { admitted: false, current: null };
    }
    topic.watchers.add(watcher);
    return { admitted: true, current };
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
        const update = EncodedState.of(state, json);
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
  /** Polls answered in the last full minute and in this one so far, and the books followed for pollers. */
  pollStats(): { lastMinute: number; thisMinute: number; polledBooks: number } {
    const polls = this.#pollMinute(Date.now());
    return { lastMinute: polls.previous, thisMinute: polls.current, polledBooks: this.#polled.size };
  }

  #pollMinute(now: number): { minute: number; current: number; previous: number } {
    const minute = Math.floor(now / 60_000);
    const polls = this.#polls;
    if (minute !== polls.minute) this.#polls = { minute, current: 0, previous: minute === polls.minute + 1 ? polls.current : 0 };
    return this.#polls;
  }

  /** The books followed, with their watchers and their tenant as last seen (at most `limit`, most watched first). */
  watchedBooks(limit: number): Array<{ bookId: string; watchers: number; tenant: string | null }> {
    const books = [...this.#topics].map(([bookId, topic]) => ({ bookId, watchers: topic.watchers.size, tenant: topic.newest.tenant ?? null }));
    return books.sort((a, b) => b.watchers - a.watchers || a.bookId.localeCompare(b.bookId)).slice(0, limit);
  }

  stats(): { topics: number; watchers: number; everyBookWatchers: number } {
    let watchers = 0;
    for (const topic of this.#topics.values()) watchers += topic.watchers.size;
    return { topics: this.#topics.size, watchers, everyBookWatchers: this.#everyBook.size };
  }

  #open(bookId: string): Topic {
    const topic: Topic = { newest: new TopicState(bookId), ready: false, watchers: new Set(), joining: 0, setup: Promise.resolve(), unsubscribe: null };
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
      const found = await this.#findNewest(bookId);
      if (found) this.#offer(topic, found.state);
      if (found === null || found.source !== 'database') topic.ready = true;
    } catch (error) {
      // Watchers still join: they get the state with the next update, or after Redis reconnects.
      FaultLog.of(this.#log).report('topic_read', 'could not read the current state for a new topic', { err: (error as Error).message });
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
    if (!topic.newest.isNewer(state.version)) return;
    const update = EncodedState.of(state, json);
    topic.newest.set(update);
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
