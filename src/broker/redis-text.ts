import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Fence } from './commit.js';
import { partitionOf } from './cluster-keys.js';
import type { RedisKeys } from './keys.js';
import type { RedisBroker } from './redis.js';
import { Subscriptions } from './redis-subscriptions.js';
import type { PubSubMode } from './redis-subscriptions.js';
import { APPEND_TEXT, BEGIN_SECTION, READ_TEXT } from './scripts.js';
import { DEFAULT_MAX_SECTION_TEXT_BYTES, TEXT_GRACE_SECONDS } from './text-log.js';
import type { AppendResult, CurrentSection, SectionText, TextChunk, TextListener, TextLog, TextPosition } from './text-log.js';
import { ChannelListeners } from './channel-listeners.js';

/** What a RedisBroker shares with the text log beside it. */
export interface SharedRedis {
  readonly commands: Redis | Cluster;
  readonly subscriber: Redis | Cluster;
  readonly mode: PubSubMode;
  readonly timeoutMs: number;
  /** Runs a command with the broker's error mapping (BrokerUnavailableError, BrokerFullError). */
  call<T>(command: () => Promise<T>): Promise<T>;
}

/**
 * The live-text layout (docs/live-text.md, docs/protocol.md). One Redis and Sentinel:
 * `<prefix>text:<bookId>:<chapter>:<section>`, `<prefix>textmeta:<bookId>`, channel
 * `<prefix>texts:<bookId>`; every book through PSUBSCRIBE `<prefix>texts:*`. A cluster: the same
 * names behind the book's hash tag (`<prefix>{p<N>}:text:…`), and every book through the
 * partitions' feeds `<prefix>{p<N>}:textfeed`.
 */
export interface TextKeys {
  section(bookId: string, chapter: number, section: number): string;
  /** What a section's key starts with: then `<chapter>:<section>`, the meta hash's field (the commit script builds it). */
  sectionPrefix(bookId: string): string;
  meta(bookId: string): string;
  channel(bookId: string): string;
  bookIdOfChannel(channel: string): string;
  feed(partition: number): string | null;
}

export function textKeys(prefix: string, cluster: boolean): TextKeys {
  if (!cluster) {
    const channelPrefix = `${prefix}texts:`;
    return {
      section: (bookId, chapter, section) => `${prefix}text:${bookId}:${chapter}:${section}`,
      sectionPrefix: (bookId) => `${prefix}text:${bookId}:`,
      meta: (bookId) => `${prefix}textmeta:${bookId}`,
      channel: (bookId) => `${channelPrefix}${bookId}`,
      bookIdOfChannel: (channel) => channel.slice(channelPrefix.length),
      feed: () => null,
    };
  }
  const tag = (partition: number) => `${prefix}{p${partition}}:`;
  const ofBook = (bookId: string) => tag(partitionOf(bookId));
  const marker = '}:texts:';
  return {
    section: (bookId, chapter, section) => `${ofBook(bookId)}text:${bookId}:${chapter}:${section}`,
    sectionPrefix: (bookId) => `${ofBook(bookId)}text:${bookId}:`,
    meta: (bookId) => `${ofBook(bookId)}textmeta:${bookId}`,
    channel: (bookId) => `${ofBook(bookId)}texts:${bookId}`,
    bookIdOfChannel: (channel) => channel.slice(channel.indexOf(marker, prefix.length) + marker.length),
    feed: (partition) => `${tag(partition)}textfeed`,
  };
}

type TextRedis = (Redis | Cluster) & {
  textBegin(section: string, meta: string, fence: string, ...argv: Array<string | number>): Promise<[number, number?]>;
  textAppend(section: string, meta: string, fence: string, ...argv: Array<string | number>): Promise<[number, number?]>;
  textRead(section: string, meta: string, chapter: number, sectionNumber: number, from: number): Promise<[number, number, string] | null>;
};

export interface RedisTextLogOptions {
  broker: RedisBroker;
  keyPrefix: string;
  ttlSeconds: number;
  log: Logger;
  maxSectionBytes?: number;
  graceSeconds?: number;
}

/**
 * The text log on the broker's Redis (one, Sentinel or a cluster): each append and its
 * announcement one script, fenced by the book's fence key. It shares the broker's command
 * connection and subscriber (with sharded pub/sub, its own subscriber per master).
 */
export class RedisTextLog implements TextLog {
  readonly keys: TextKeys;
  readonly #shared: SharedRedis;
  readonly #redis: TextRedis;
  readonly #fenceKey: (bookId: string) => string;
  readonly #ttlSeconds: number;
  readonly #maxSectionBytes: number;
  readonly #graceSeconds: number;
  readonly #log: Logger;
  readonly #publish: 'PUBLISH' | 'SPUBLISH';
  readonly #partitioned: boolean;
  readonly #subscriptions: Subscriptions;
  readonly #listeners: ChannelListeners<TextListener>;
  #everyBookSubscribed: Promise<void> = Promise.resolve();
  readonly #allListeners = new Set<TextListener>();

  constructor(options: RedisTextLogOptions) {
    const { broker } = options;
    this.#shared = broker.shared;
    this.#partitioned = broker.keys.partitions > 1;
    this.keys = textKeys(options.keyPrefix, this.#partitioned);
    this.#fenceKey = (bookId) => broker.keys.fence(bookId);
    this.#ttlSeconds = options.ttlSeconds;
    this.#maxSectionBytes = options.maxSectionBytes ?? DEFAULT_MAX_SECTION_TEXT_BYTES;
    this.#graceSeconds = options.graceSeconds ?? TEXT_GRACE_SECONDS;
    this.#log = options.log;
    this.#publish = this.#shared.mode === 'sharded' ? 'SPUBLISH' : 'PUBLISH';
    this.#redis = this.#shared.commands as TextRedis;
    this.#redis.defineCommand('textBegin', { numberOfKeys: 3, lua: BEGIN_SECTION });
    this.#redis.defineCommand('textAppend', { numberOfKeys: 3, lua: APPEND_TEXT });
    this.#redis.defineCommand('textRead', { numberOfKeys: 2, lua: READ_TEXT });
    // The subscriptions machinery of the broker, over the text channels and feeds.
    const keys: RedisKeys = { ...broker.keys, channel: this.keys.channel, bookIdOfChannel: this.keys.bookIdOfChannel, feed: this.keys.feed };
    this.#subscriptions = new Subscriptions({
      subscriber: this.#shared.subscriber,
      name: 'booksai-progress-text',
      mode: this.#shared.mode,
      keys,
      log: options.log,
      timeoutMs: this.#shared.timeoutMs,
      // Text is a log: what was missed while disconnected is read by offset (TextLog.read), not re-sent.
      readLatest: async (bookIds) => bookIds.map(() => null),
      onMessage: (channel, raw, everyBook) => this.#onMessage(channel, raw, everyBook),
      onGap: () => {},
    });
    this.#listeners = new ChannelListeners(this.#subscriptions);
  }

  async beginSection(bookId: string, chapter: number, section: number, fence?: Fence): Promise<number | null> {
    const reply = await this.#shared.call(() => this.#redis.textBegin(...this.#scriptArgs(bookId, chapter, section, fence)));
    return reply[0] === 1 ? (reply[1] as number) : null;
  }

  async append(bookId: string, at: TextPosition, text: string, fence?: Fence): Promise<AppendResult> {
    const reply = await this.#shared.call(() =>
      this.#redis.textAppend(...this.#scriptArgs(bookId, at.chapter, at.section, fence), at.offset, text, this.#maxSectionBytes),
    );
    const [status, length = 0] = reply;
    if (status === 1) return { ok: true, length };
    if (status === 0) return { ok: false, reason: 'offset_mismatch', length };
    if (status === 2) return { ok: false, reason: 'too_large', length };
    return { ok: false, reason: 'fenced' };
  }

  async read(bookId: string, chapter: number, section: number, from = 0): Promise<SectionText | null> {
    const reply = await this.#shared.call(() => this.#redis.textRead(this.keys.section(bookId, chapter, section), this.keys.meta(bookId), chapter, section, from));
    if (reply === null) return null;
    const [attempt, length, text] = reply;
    return { attempt, text, length };
  }

  async current(bookId: string): Promise<CurrentSection | null> {
    const meta = this.keys.meta(bookId);
    const field = await this.#shared.call(() => this.#redis.hget(meta, 'current'));
    const match = field === null ? null : /^(\d+):(\d+)$/.exec(field);
    if (!match) return null;
    const attempt = await this.#shared.call(() => this.#redis.hget(meta, field as string));
    return { chapter: Number(match[1]), section: Number(match[2]), attempt: Number(attempt ?? 1) };
  }

  async chapterSaved(bookId: string, chapter: number, sections: number): Promise<void> {
    const keys = Array.from({ length: sections }, (_, i) => this.keys.section(bookId, chapter, i + 1));
    // LT: never lengthens a shorter expiry; a key that is not held is left alone.
    await this.#shared.call(() => Promise.all(keys.map((key) => this.#redis.expire(key, this.#graceSeconds, 'LT'))));
  }

  async subscribeText(bookId: string, listener: TextListener): Promise<() => void> {
    const channel = this.keys.channel(bookId);
    return this.#listeners.add(channel, listener);
  }

  async subscribeAllText(listener: TextListener): Promise<() => void> {
    this.#allListeners.add(listener);
    if (this.#allListeners.size === 1) this.#everyBookSubscribed = this.#subscriptions.addEveryBook();
    await this.#everyBookSubscribed;
    return () => {
      if (!this.#allListeners.delete(listener) || this.#allListeners.size > 0) return;
      this.#subscriptions.removeEveryBook();
    };
  }

  /** Stops listening; the connections are the broker's, closed with it. */
  close(): void {
    this.#listeners.clear();
    this.#allListeners.clear();
    this.#subscriptions.close();
  }

  /** KEYS and the ARGV every text script starts with (scripts.ts). */
  #scriptArgs(bookId: string, chapter: number, section: number, fence: Fence | undefined): [string, string, string, ...Array<string | number>] {
    const feed = this.#partitioned ? this.keys.feed(partitionOf(bookId)) : null;
    return [
      this.keys.section(bookId, chapter, section),
      this.keys.meta(bookId),
      this.#fenceKey(bookId),
      chapter,
      section,
      fence === undefined ? '' : String(fence),
      this.#ttlSeconds,
      this.keys.channel(bookId),
      bookId,
      this.#publish,
      feed ?? '',
    ];
  }

  #onMessage(channel: string, raw: string, everyBook: boolean): void {
    const listeners = everyBook ? this.#allListeners : this.#listeners.of(channel);
    if (!listeners || listeners.size === 0) return;
    const chunk = decodeChunk(raw);
    if (chunk === null) {
      this.#log.warn({ channel }, 'ignoring a malformed text announcement in redis');
      return;
    }
    for (const listener of listeners) listener(chunk);
  }
}

/** An announcement as the scripts write it; null for anything else. */
export function decodeChunk(raw: string): TextChunk | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const { bookId, chapter, section, attempt, offset, text, reset } = parsed as Record<string, unknown>;
  const counts = [chapter, section, attempt, offset].every((n) => Number.isSafeInteger(n) && (n as number) >= 0);
  if (typeof bookId !== 'string' || typeof text !== 'string' || !counts) return null;
  const chunk = { bookId, chapter, section, attempt, offset, text } as { -readonly [K in keyof TextChunk]: TextChunk[K] };
  if (reset === true) chunk.reset = true;
  return chunk;
}
