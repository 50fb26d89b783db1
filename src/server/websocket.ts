import { STATUS_CODES } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import { z } from 'zod';
import type { Authenticator } from '../auth/authenticator.js';
import { requireScope } from '../auth/authenticator.js';
import type { Caller } from '../auth/caller.js';
import { mayRead, mayWatch } from '../auth/caller.js';
import { AUTH_ERROR_STATUS, AuthError, challengeFor } from '../auth/errors.js';
import { BookIdSchema } from '../progress/schema.js';
import { credentialsOf } from './auth.js';
import { clientAddress } from './access-log.js';
import { stripBasePath } from './base-path.js';
import { BookQueue } from './book-queue.js';
import type { CorsPolicy } from './cors.js';
import { RETRY_AFTER_SECONDS, errorBody } from './errors.js';
import type { Expiries } from './expiries.js';
import { DOT_SEGMENT_ERROR, hasDotSegment } from './paths.js';
import type { Hub, Watcher } from './hub.js';
import { USER_LIMIT_RETRY_AFTER_SECONDS } from './stream-routes.js';
import type { Update } from './update.js';
import type { UserConnections } from './user-connections.js';

export const WEBSOCKET_PATH = '/api/ai/ws';
const MAX_MESSAGE_BYTES = 64 * 1024;
/** Bytes queued for one client past which it keeps only the newest state per book. */
const BACKPRESSURE_BYTES = 64 * 1024;

const ClientMessageSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('subscribe'),
    books: z.array(BookIdSchema).min(1),
    /** Versions the client already has, so only newer states are sent. */
    versions: z.record(z.string(), z.number().int().min(0)).optional(),
  }),
  z.object({ type: z.literal('unsubscribe'), books: z.array(BookIdSchema).min(1) }),
  /** A fresh token for the same user, sent before the current one expires. */
  z.object({ type: z.literal('auth'), token: z.string().min(1).max(16_384) }),
]);

/** Close codes: the token expired (4401, as HTTP's 401), like the 1008 policy code but telling why. */
export const CLOSE_TOKEN_EXPIRED = 4401;

export interface WebSocketOptions {
  hub: Hub;
  heartbeatMs: number;
  maxBooksPerConnection: number;
  /** Refuses new connections (503) while it returns true. */
  full: () => boolean;
  auth: Authenticator;
  expiries: Expiries;
  userConnections: UserConnections;
  log: Logger;
  /** BASE_PATH: the endpoint is at `${basePath}/api/ai/ws`. */
  basePath?: string;
  /** Decides which pages may open a connection (403 otherwise); any when absent. */
  cors?: CorsPolicy;
  /** TRUST_PROXY, for the client address in logs. */
  trustProxy?: boolean;
}

/**
 * One WebSocket connection: the same guarantees as an SSE stream (newest state first, versions
 * only go up per book, latest state wins for a slow client, a terminal state is never dropped),
 * with subscriptions changed by messages instead of by reconnecting.
 */
class Subscriber implements Watcher {
  /** Subscribed books and their tenants. */
  readonly books = new Map<string, string | undefined>();
  /** Books whose join is under way: an unsubscribe meanwhile removes them. */
  readonly joining = new Set<string>();
  readonly #ws: WebSocket;
  readonly #queue = new BookQueue();
  #sending = 0;
  alive = true;
  closed = false;
  caller: Caller;
  /** Gives back the user's connection place (MAX_CONNECTIONS_PER_USER). */
  readonly release: () => void;
  cancelExpiry: (() => void) | null = null;

  constructor(ws: WebSocket, caller: Caller, release: () => void) {
    this.#ws = ws;
    this.caller = caller;
    this.release = release;
  }

  know(bookId: string, version: number): void {
    this.#queue.know(bookId, version);
  }

  forget(bookId: string): void {
    this.books.delete(bookId);
    this.#queue.forget(bookId);
  }

  deliver(update: Update): void {
    if (!this.books.has(update.bookId) || !this.#queue.offer(update)) return;
    if (this.#ws.bufferedAmount < BACKPRESSURE_BYTES || this.#sending === 0) this.#flush();
  }

  send(message: object): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify(message));
  }

  #flush(): void {
    for (let update = this.#queue.take(); update !== null; update = this.#queue.take()) {
      if (this.#ws.readyState !== WebSocket.OPEN) return;
      this.#sending++;
      this.#ws.send(update.wsMessage, { binary: false }, () => {
        this.#sending--;
        if (this.#queue.hasPending && this.#ws.bufferedAmount < BACKPRESSURE_BYTES) this.#flush();
      });
      if (this.#ws.bufferedAmount >= BACKPRESSURE_BYTES) return;
    }
  }
}

/**
 * Serves `GET /api/ai/ws` (WebSocket upgrade) next to the HTTP routes. Messages are JSON:
 * `{ type: 'subscribe', books, versions? }` and `{ type: 'unsubscribe', books }` from the client;
 * `{ type: 'progress', data }` and `{ type: 'error', error: { code, message } }` from the server.
 * `close()` ends every connection with code 1012 (restarting), so clients reconnect elsewhere;
 * `terminate()` drops those that did not answer.
 */
export function attachWebSocket(server: Server, options: WebSocketOptions): { close(): void; terminate(): void; readonly size: number } {
  const { hub, log } = options;
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  const subscribers = new Map<WebSocket, Subscriber>();

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const [path, query] = splitUrl(req.url ?? '');
    if (hasDotSegment(path)) return refuse(socket, 400, DOT_SEGMENT_ERROR.code, DOT_SEGMENT_ERROR.message);
    if (stripBasePath(path, options.basePath ?? '') !== WEBSOCKET_PATH) return refuse(socket, 404, 'not_found', `no WebSocket endpoint at ${path}`);
    if (options.cors && !options.cors.allowsWebSocket(req)) {
      log.warn({ client: clientAddress(req, options.trustProxy ?? false), origin: req.headers.origin }, 'websocket refused: origin not allowed');
      return refuse(socket, 403, 'origin_not_allowed', `origin ${req.headers.origin} may not open this WebSocket`);
    }
    if (options.full()) return refuse(socket, 503, 'too_many_connections', 'this server holds its maximum of connections; retry later');
    // Node stops watching an upgrade socket for errors: while the token is checked, a client
    // that resets the connection would otherwise end the process with an unhandled 'error'.
    const onSocketError = (error: Error) => log.debug({ err: error.message }, 'websocket handshake socket error');
    socket.on('error', onSocketError);
    void authorize(req, query).then(
      (caller) => {
        if (socket.destroyed) return;
        if (options.full()) return refuse(socket, 503, 'too_many_connections', 'this server holds its maximum of connections; retry later');
        const release = options.userConnections.acquireFor(caller);
        if (release === null) {
          return refuse(socket, 429, 'too_many_connections', 'this user holds its maximum of open streams and WebSockets; close one first');
        }
        // The place comes back when the socket closes, also after a handshake ws refused itself.
        socket.once('close', release);
        wss.handleUpgrade(req, socket, head, (ws) => {
          socket.off('error', onSocketError);
          accept(ws, caller, release);
        });
      },
      (error: unknown) => {
        if (error instanceof AuthError) return refuse(socket, AUTH_ERROR_STATUS[error.code], error.code, error.message, challengeFor(error));
        log.warn({ err: (error as Error).message }, 'websocket authentication failed');
        refuse(socket, 503, 'service_unavailable', 'retry later');
      },
    );
  });

  async function authorize(req: IncomingMessage, query: string | null): Promise<Caller> {
    const caller = await options.auth.authenticate(credentialsOf(req.headers, query === null ? null : new URLSearchParams(query)));
    requireScope(caller, 'progress:read');
    return caller;
  }

  function accept(ws: WebSocket, caller: Caller, release: () => void): void {
    const subscriber = new Subscriber(ws, caller, release);
    subscribers.set(ws, subscriber);
    expireAt(ws, subscriber);
    ws.on('pong', () => (subscriber.alive = true));
    ws.on('message', (data, isBinary) => void handle(ws, subscriber, isBinary ? null : data.toString()));
    ws.on('close', () => {
      subscriber.closed = true;
      subscribers.delete(ws);
      subscriber.cancelExpiry?.();
      subscriber.release();
      for (const bookId of subscriber.books.keys()) hub.leave(bookId, subscriber);
      subscriber.books.clear();
    });
    ws.on('error', (error) => log.debug({ err: error.message }, 'websocket error'));
  }

  /** Closes the connection with 4401 when the caller's token expires, unless refreshed before. */
  function expireAt(ws: WebSocket, subscriber: Subscriber): void {
    subscriber.cancelExpiry?.();
    const at = subscriber.caller.expiresAt;
    subscriber.cancelExpiry = at === null ? null : options.expiries.add(at, () => ws.close(CLOSE_TOKEN_EXPIRED, 'token expired'));
  }

  /** `{ type: 'auth', token }`: the same user's fresh token replaces the one the connection had. */
  async function refresh(ws: WebSocket, subscriber: Subscriber, token: string): Promise<void> {
    let caller: Caller;
    try {
      caller = await options.auth.authenticate({ authorization: `Bearer ${token}` });
      requireScope(caller, 'progress:read');
    } catch (error) {
      const code = error instanceof AuthError ? error.code : 'invalid_token';
      const message = error instanceof AuthError ? error.message : 'the token is not valid';
      return subscriber.send({ type: 'error', ...errorBody(code, message) });
    }
    const current = subscriber.caller;
    if (caller.sub !== current.sub || caller.tenant !== current.tenant) {
      return subscriber.send({ type: 'error', ...errorBody('invalid_token', 'a refreshed token must name the same user and tenant') });
    }
    subscriber.caller = caller;
    if (!subscriber.closed) expireAt(ws, subscriber);
    // A narrower token (a smaller `books` claim, no more admin) ends the books it no longer allows.
    for (const [bookId, tenant] of [...subscriber.books]) {
      if (mayRead(caller, bookId, tenant)) continue;
      hub.leave(bookId, subscriber);
      subscriber.forget(bookId);
      subscriber.send({ type: 'error', bookId, ...errorBody('not_found', `no progress for book ${bookId}`) });
    }
    subscriber.send({ type: 'auth', data: { expiresAt: caller.expiresAt } });
  }

  async function handle(ws: WebSocket, subscriber: Subscriber, raw: string | null): Promise<void> {
    let parsed: z.infer<typeof ClientMessageSchema>;
    try {
      const result = ClientMessageSchema.safeParse(raw === null ? null : JSON.parse(raw));
      if (!result.success) {
        const issue = result.error.issues[0];
        return subscriber.send({ type: 'error', ...errorBody('invalid_message', `${issue?.path.join('.') || 'message'}: ${issue?.message ?? 'invalid'}`) });
      }
      parsed = result.data;
    } catch {
      return subscriber.send({ type: 'error', ...errorBody('invalid_json', 'messages must be JSON text') });
    }
    if (parsed.type === 'auth') return refresh(ws, subscriber, parsed.token);
    if (parsed.type === 'unsubscribe') {
      for (const bookId of parsed.books) {
        if (subscriber.books.has(bookId)) hub.leave(bookId, subscriber);
        subscriber.joining.delete(bookId);
        subscriber.forget(bookId);
      }
      return;
    }
    const added = [...new Set(parsed.books)].filter((bookId) => !subscriber.books.has(bookId) && !subscriber.joining.has(bookId));
    if (subscriber.books.size + subscriber.joining.size + added.length > options.maxBooksPerConnection) {
      return subscriber.send({ type: 'error', ...errorBody('too_many_books', `a connection follows at most ${options.maxBooksPerConnection} books`) });
    }
    for (const bookId of added) {
      subscriber.joining.add(bookId);
      subscriber.know(bookId, parsed.versions?.[bookId] ?? 0);
    }
    const refused = new Set<string>();
    const joins = await Promise.all(
      added.map((bookId) =>
        hub.join(bookId, subscriber, (latest) => {
          // Decided in the same step as the join: an update right after it finds the book subscribed.
          const wanted = subscriber.joining.delete(bookId) && !subscriber.closed; // not unsubscribed meanwhile
          if (!wanted) return false;
          // The caller as it is now: a refresh meanwhile may have narrowed it.
          if (!mayWatch(subscriber.caller, bookId, latest)) {
            refused.add(bookId);
            return false;
          }
          subscriber.books.set(bookId, latest?.tenant);
          return true;
        }),
      ),
    );
    added.forEach((bookId, i) => {
      const joined = joins[i];
      if (joined?.latest) subscriber.deliver(joined.latest);
      if (!refused.has(bookId)) return;
      subscriber.forget(bookId);
      // Refused exactly as a missing book; the rest of the subscription goes on.
      subscriber.send({ type: 'error', bookId, ...errorBody('not_found', `no progress for book ${bookId}`) });
    });
  }

  // One sweep for every connection: a ping, and the end of those that missed the last one.
  const heartbeat = setInterval(() => {
    for (const [ws, subscriber] of subscribers) {
      if (!subscriber.alive) {
        ws.terminate();
        continue;
      }
      subscriber.alive = false;
      ws.ping();
    }
  }, options.heartbeatMs);
  heartbeat.unref();

  return {
    get size() {
      return subscribers.size;
    },
    close() {
      clearInterval(heartbeat);
      for (const ws of subscribers.keys()) ws.close(1012, 'server restarting');
      wss.close();
    },
    /** For clients that do not answer the close handshake: shutdown does not wait for them. */
    terminate() {
      for (const ws of subscribers.keys()) ws.terminate();
    },
  };
}

/** Answers an upgrade request with an HTTP error, before any WebSocket exists. */
function refuse(socket: Duplex, status: number, code: string, message: string, challenge: string | null = null): void {
  if (!socket.writable) return;
  const body = JSON.stringify(errorBody(code, message));
  const retryAfter = status === 503 ? RETRY_AFTER_SECONDS : status === 429 ? USER_LIMIT_RETRY_AFTER_SECONDS : null;
  const extra = `${retryAfter === null ? '' : `Retry-After: ${retryAfter}\r\n`}${challenge === null ? '' : `WWW-Authenticate: ${challenge}\r\n`}`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`,
  );
}

/** The path and the query (null when there is none) of a request URL. */
function splitUrl(url: string): [string, string | null] {
  const at = url.indexOf('?');
  return at === -1 ? [url, null] : [url.slice(0, at), url.slice(at + 1)];
}
