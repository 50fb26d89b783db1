import { STATUS_CODES } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import { z } from 'zod';
import { BookIdSchema } from '../progress/schema.js';
import { clientAddress } from './access-log.js';
import { stripBasePath } from './base-path.js';
import { BookQueue } from './book-queue.js';
import type { CorsPolicy } from './cors.js';
import { errorBody } from './errors.js';
import type { Hub, Watcher } from './hub.js';
import type { Update } from './update.js';

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
]);

export interface WebSocketOptions {
  hub: Hub;
  heartbeatMs: number;
  maxBooksPerConnection: number;
  /** Refuses new connections (503) while it returns true. */
  full: () => boolean;
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
  readonly books = new Set<string>();
  readonly #ws: WebSocket;
  readonly #queue = new BookQueue();
  #sending = 0;
  alive = true;
  closed = false;

  constructor(ws: WebSocket) {
    this.#ws = ws;
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
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (stripBasePath(path, options.basePath ?? '') !== WEBSOCKET_PATH) return refuse(socket, 404, 'not_found', `no WebSocket endpoint at ${path}`);
    if (options.cors && !options.cors.allowsWebSocket(req)) {
      log.warn({ client: clientAddress(req, options.trustProxy ?? false), origin: req.headers.origin }, 'websocket refused: origin not allowed');
      return refuse(socket, 403, 'origin_not_allowed', `origin ${req.headers.origin} may not open this WebSocket`);
    }
    if (options.full()) return refuse(socket, 503, 'too_many_connections', 'this server holds its maximum of connections; retry later');
    wss.handleUpgrade(req, socket, head, (ws) => {
      const subscriber = new Subscriber(ws);
      subscribers.set(ws, subscriber);
      ws.on('pong', () => (subscriber.alive = true));
      ws.on('message', (data, isBinary) => void handle(subscriber, isBinary ? null : data.toString()));
      ws.on('close', () => {
        subscriber.closed = true;
        subscribers.delete(ws);
        for (const bookId of subscriber.books) hub.leave(bookId, subscriber);
        subscriber.books.clear();
      });
      ws.on('error', (error) => log.debug({ err: error.message }, 'websocket error'));
    });
  });

  async function handle(subscriber: Subscriber, raw: string | null): Promise<void> {
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
    if (parsed.type === 'unsubscribe') {
      for (const bookId of parsed.books) {
        if (subscriber.books.has(bookId)) hub.leave(bookId, subscriber);
        subscriber.forget(bookId);
      }
      return;
    }
    const added = parsed.books.filter((bookId) => !subscriber.books.has(bookId));
    if (subscriber.books.size + new Set(added).size > options.maxBooksPerConnection) {
      return subscriber.send({ type: 'error', ...errorBody('too_many_books', `a connection follows at most ${options.maxBooksPerConnection} books`) });
    }
    for (const bookId of added) {
      subscriber.books.add(bookId);
      subscriber.know(bookId, parsed.versions?.[bookId] ?? 0);
    }
    const latest = await Promise.all(added.map((bookId) => hub.join(bookId, subscriber)));
    for (const bookId of added) {
      // Closed or unsubscribed while joining: its cleanup ran before the join added it.
      if (subscriber.closed || !subscriber.books.has(bookId)) hub.leave(bookId, subscriber);
    }
    for (const update of latest) if (update) subscriber.deliver(update);
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

function refuse(socket: Duplex, status: 403 | 404 | 503, code: string, message: string): void {
  const body = JSON.stringify(errorBody(code, message));
  const reason = STATUS_CODES[status] ?? '';
  const retry = status === 503 ? 'Retry-After: 2\r\n' : '';
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${retry}Connection: close\r\n\r\n${body}`);
}
