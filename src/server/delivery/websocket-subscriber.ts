import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import type { Authenticator } from '../../auth/authenticator.js';
import { requireScope } from '../../auth/authenticator.js';
import type { Caller } from '../../auth/caller.js';
import { mayRead, mayWatch } from '../../auth/caller.js';
import { Refusal } from '../../refusal.js';
import { BookQueue } from './book-queue.js';
import type { EncodedState } from './encoded-state.js';
import type { Expiries } from './expiries.js';
import type { Hub, Watcher } from './hub.js';
import type { TextLog } from '../../broker/text-log.js';
import { TextFeed, frameData, parseTextFrom } from './text-feed.js';
import { CLOSE_TEXT_BEHIND, CLOSE_TOKEN_EXPIRED, errorMessage, parseClientMessage } from './websocket-protocol.js';

/** Bytes queued for one client past which it keeps only the newest state per book. */
const BACKPRESSURE_BYTES = 64 * 1024;

/** What every subscriber of the process shares. */
export interface SubscriberContext {
  hub: Hub;
  auth: Authenticator;
  expiries: Expiries;
  maxBooksPerConnection: number;
  log: Logger;
  /** Live text, for subscriptions with `text: true`. */
  texts: TextLog;
}

/**
 * One WebSocket connection: the same guarantees as an SSE stream (newest state first, versions
 * only go up per book, latest state wins for a slow client, a terminal state is never dropped),
 * with subscriptions changed by messages instead of by reconnecting. It answers its client's
 * messages, takes a fresh token, and closes itself when its token expires.
 */
export class Subscriber implements Watcher {
  readonly #ws: WebSocket;
  readonly #context: SubscriberContext;
  /** Subscribed books and their tenants. */
  readonly #books = new Map<string, string | undefined>();
  /** Books whose join is under way: an unsubscribe meanwhile removes them. */
  readonly #joining = new Set<string>();
  readonly #queue = new BookQueue();
  /** Gives back the user's connection place (MAX_CONNECTIONS_PER_USER). */
  readonly #release: () => void;
  #caller: Caller;
  #sending = 0;
  #alive = true;
  #closed = false;
  #cancelExpiry: (() => void) | null = null;
  /** Made at the first subscription with text: a progress-only connection has none. */
  #text: TextFeed | null = null;

  /** The caller's tenant (null: none, open mode). */
  get tenant(): string | null {
    return this.#caller.tenant;
  }

  get bookCount(): number {
    return this.#books.size;
  }

  /** `onClose`: called once, when the connection has closed and left every topic. */
  constructor(ws: WebSocket, caller: Caller, release: () => void, context: SubscriberContext, onClose: () => void) {
    this.#ws = ws;
    this.#caller = caller;
    this.#release = release;
    this.#context = context;
    this.#expireAt();
    ws.on('pong', () => (this.#alive = true));
    ws.on('message', (data, isBinary) => void this.#handle(isBinary ? null : data.toString()));
    ws.on('close', () => {
      this.#closed = true;
      this.#cancelExpiry?.();
      this.#release();
      this.#text?.close();
      for (const bookId of this.#books.keys()) context.hub.leave(bookId, this);
      this.#books.clear();
      onClose();
    });
    ws.on('error', (error) => context.log.debug({ err: error.message }, 'websocket error'));
  }

  /** The heartbeat's visit: a ping, or the end of a client that missed the last one. */
  ping(): void {
    if (!this.#alive) {
      this.#ws.terminate();
      return;
    }
    this.#alive = false;
    this.#ws.ping();
  }

  deliver(update: EncodedState): void {
    if (!this.#books.has(update.bookId) || !this.#queue.offer(update)) return;
    // A book's last words before its final state.
    if (update.terminal && this.#text?.hasPending) this.#flushText();
    if (this.#ws.bufferedAmount < BACKPRESSURE_BYTES || this.#sending === 0) this.#flush();
  }

  close(code: number, reason: string): void {
    this.#ws.close(code, reason);
  }

  /** For clients that do not answer the close handshake. */
  terminate(): void {
    this.#ws.terminate();
  }

  async #handle(raw: string | null): Promise<void> {
    const message = parseClientMessage(raw);
    if ('error' in message) return this.#send(message.error);
    if (message.type === 'auth') return this.#refresh(message.token);
    if (message.type === 'unsubscribe') return this.#unsubscribe(message.books);
    const textFrom = message.textFrom ?? {};
    for (const [bookId, raw] of Object.entries(textFrom)) {
      if (parseTextFrom(raw) === undefined) return this.#send(errorMessage('invalid_text_from', `textFrom of ${bookId} must be <chapter>:<section>:<offset>`, bookId));
    }
    return this.#subscribe(message.books, message.versions ?? {}, message.text === true ? textFrom : null, message.delta === 'merge-patch');
  }

  #unsubscribe(books: readonly string[]): void {
    for (const bookId of books) {
      if (this.#books.has(bookId)) this.#context.hub.leave(bookId, this);
      this.#joining.delete(bookId);
      this.#forget(bookId);
    }
  }

  /** `textFrom`: null for progress only, else where the client is in each book's text (none: from the chapter's start). */
  async #subscribe(books: readonly string[], versions: Readonly<Record<string, number>>, textFrom: Readonly<Record<string, string>> | null, delta: boolean): Promise<void> {
    const { hub, maxBooksPerConnection } = this.#context;
    const added = [...new Set(books)].filter((bookId) => !this.#books.has(bookId) && !this.#joining.has(bookId));
    if (this.#books.size + this.#joining.size + added.length > maxBooksPerConnection) {
      return this.#send(errorMessage('too_many_books', `a connection follows at most ${maxBooksPerConnection} books`));
    }
    for (const bookId of added) {
      this.#joining.add(bookId);
      this.#queue.know(bookId, versions[bookId] ?? 0, delta);
    }
    const refused = new Set<string>();
    const joins = await Promise.all(
      added.map((bookId) =>
        hub.join(bookId, this, (current) => {
          // Decided in the same step as the join: an update right after it finds the book subscribed.
          const wanted = this.#joining.delete(bookId) && !this.#closed; // not unsubscribed meanwhile
          if (!wanted) return false;
          // The caller as it is now: a refresh meanwhile may have narrowed it.
          if (!mayWatch(this.#caller, bookId, current)) {
            refused.add(bookId);
            return false;
          }
          this.#books.set(bookId, current?.tenant);
          return true;
        }),
      ),
    );
    const texts: Array<Promise<void>> = [];
    added.forEach((bookId, i) => {
      const joined = joins[i];
      if (joined?.current) this.deliver(joined.current);
      if (textFrom !== null && joined?.admitted && this.#books.has(bookId)) {
        const raw = textFrom[bookId];
        texts.push(this.#textFeed().add(bookId, raw === undefined ? null : (parseTextFrom(raw) ?? null)));
      }
      if (!refused.has(bookId)) return;
      this.#forget(bookId);
      // Refused exactly as a missing book; the rest of the subscription goes on.
      this.#send(errorMessage('not_found', `no progress for book ${bookId}`, bookId));
    });
    try {
      await Promise.all(texts);
    } catch (error) {
      this.#context.log.warn({ err: (error as Error).message }, 'live text could not be read');
      this.#ws.close(CLOSE_TEXT_BEHIND, 'live text unavailable: resume');
    }
  }

  #textFeed(): TextFeed {
    this.#text ??= new TextFeed(this.#context.texts, {
      onDue: () => this.#flushText(),
      onOverflow: () => this.#ws.close(CLOSE_TEXT_BEHIND, 'fell behind the live text: resume'),
    });
    return this.#text;
  }

  /** `{ type: 'auth', token }`: the same user's fresh token replaces the one the connection had. */
  async #refresh(token: string): Promise<void> {
    let caller: Caller;
    try {
      caller = await this.#context.auth.authenticate({ authorization: `Bearer ${token}` });
      requireScope(caller, 'progress:read');
    } catch (error) {
      const refusal = error instanceof Refusal ? error : new Refusal(401, 'invalid_token', 'the token is not valid');
      return this.#send(errorMessage(refusal.code, refusal.message));
    }
    const current = this.#caller;
    if (caller.sub !== current.sub || caller.tenant !== current.tenant) {
      return this.#send(errorMessage('invalid_token', 'a refreshed token must name the same user and tenant'));
    }
    this.#caller = caller;
    if (!this.#closed) this.#expireAt();
    // A narrower token (a smaller `books` claim, no more admin) ends the books it no longer allows.
    for (const [bookId, tenant] of [...this.#books]) {
      if (mayRead(caller, bookId, tenant)) continue;
      this.#context.hub.leave(bookId, this);
      this.#forget(bookId);
      this.#send(errorMessage('not_found', `no progress for book ${bookId}`, bookId));
    }
    this.#send({ type: 'auth', data: { expiresAt: caller.expiresAt } });
  }

  /** Closes the connection with 4401 when the caller's token expires, unless refreshed before. */
  #expireAt(): void {
    this.#cancelExpiry?.();
    const at = this.#caller.expiresAt;
    this.#cancelExpiry = at === null ? null : this.#context.expiries.add(at, () => this.#ws.close(CLOSE_TOKEN_EXPIRED, 'token expired'));
  }

  #forget(bookId: string): void {
    this.#text?.remove(bookId);
    this.#books.delete(bookId);
    this.#queue.forget(bookId);
  }

  #send(message: object): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify(message));
  }

  #flush(): void {
    for (let update = this.#queue.take(); update !== null; update = this.#queue.take()) {
      if (this.#ws.readyState !== WebSocket.OPEN) return;
      this.#sending++;
      const base = this.#queue.base;
      const patch = base === null ? null : update.patchFrom(base);
      this.#ws.send(patch === null ? update.wsMessage : patch.wsMessage, { binary: false }, this.#sent);
      if (this.#ws.bufferedAmount >= BACKPRESSURE_BYTES) return;
    }
  }

  /** Writes the text waiting, merged, while the client keeps up; the rest waits (merged further) for the socket to drain. */
  #flushText(): void {
    const feed = this.#text;
    if (feed === null) return;
    while (this.#ws.readyState === WebSocket.OPEN && (this.#ws.bufferedAmount < BACKPRESSURE_BYTES || this.#sending === 0)) {
      const frame = feed.take();
      if (frame === null) return;
      this.#sending++;
      this.#ws.send(JSON.stringify({ type: frame.kind, ...frameData(frame) }), { binary: false }, this.#sent);
    }
  }

  readonly #sent = () => {
    this.#sending--;
    if (this.#ws.bufferedAmount >= BACKPRESSURE_BYTES) return;
    if (this.#queue.hasPending) this.#flush();
    if (this.#text?.hasPending) this.#flushText();
  };
}
