import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { requireScope } from '../../auth/authenticator.js';
import type { Caller } from '../../auth/caller.js';
import { credentialsOf } from '../../auth/credentials.js';
import { Refusal } from '../../refusal.js';
import type { ConnectionCap } from './connection-cap.js';
import { CLOSE_RESTARTING, MAX_MESSAGE_BYTES } from './websocket-protocol.js';
import { Subscriber } from './websocket-subscriber.js';
import type { SubscriberContext } from './websocket-subscriber.js';

export interface WebSocketEndpointOptions extends SubscriberContext {
  heartbeatMs: number;
  /** MAX_SSE_CONNECTIONS (shared with SSE streams) and MAX_CONNECTIONS_PER_USER. */
  cap: ConnectionCap;
}

/**
 * The WebSocket connections of the process. Takes upgrades the edge has routed here (path and
 * origin checked): the connection cap, the caller's token and scope, the user's cap, then the
 * handshake. One heartbeat sweep pings every connection. `close()` ends every connection with
 * 1012 (restarting), so clients reconnect elsewhere; `terminate()` drops those that did not answer.
 */
export class WebSocketEndpoint {
  readonly #options: WebSocketEndpointOptions;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  readonly #subscribers = new Set<Subscriber>();
  readonly #heartbeat: NodeJS.Timeout;

  constructor(options: WebSocketEndpointOptions) {
    this.#options = options;
    this.#heartbeat = setInterval(() => {
      for (const subscriber of this.#subscribers) subscriber.ping();
    }, options.heartbeatMs);
    this.#heartbeat.unref();
  }

  get size(): number {
    return this.#subscribers.size;
  }

  /** Each open connection's tenant (null: none, open mode) and how many books it follows, for the operator view. */
  *connections(): IterableIterator<{ tenant: string | null; books: number }> {
    for (const subscriber of this.#subscribers) yield { tenant: subscriber.tenant, books: subscriber.bookCount };
  }

  /**
   * Turns the request into a WebSocket connection. Rejects with the Refusal to answer on the
   * socket while no WebSocket exists yet. `query`: the URL's search part, null when there is none.
   */
  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, query: string | null): Promise<void> {
    const { cap, log } = this.#options;
    cap.checkRoom();
    // Node stops watching an upgrade socket for errors: while the token is checked, a client
    // that resets the connection would otherwise end the process with an unhandled 'error'.
    const onSocketError = (error: Error) => log.debug({ err: error.message }, 'websocket handshake socket error');
    socket.on('error', onSocketError);
    const caller = await this.#authorize(req, query);
    if (socket.destroyed) return;
    const release = cap.admit(caller);
    // The place comes back when the socket closes, also after a handshake ws refused itself.
    socket.once('close', release);
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off('error', onSocketError);
      this.#accept(ws, caller, release);
    });
  }

  close(): void {
    clearInterval(this.#heartbeat);
    for (const subscriber of this.#subscribers) subscriber.close(CLOSE_RESTARTING, 'server restarting');
    this.#wss.close();
  }

  /** For clients that do not answer the close handshake: shutdown does not wait for them. */
  terminate(): void {
    for (const subscriber of this.#subscribers) subscriber.terminate();
  }

  async #authorize(req: IncomingMessage, query: string | null): Promise<Caller> {
    try {
      const caller = await this.#options.auth.authenticate(credentialsOf(req.headers, query === null ? null : new URLSearchParams(query)));
      requireScope(caller, 'progress:read');
      return caller;
    } catch (error) {
      if (error instanceof Refusal) throw error;
      this.#options.log.warn({ err: (error as Error).message }, 'websocket authentication failed');
      throw new Refusal(503, 'service_unavailable', 'retry later');
    }
  }

  #accept(ws: WebSocket, caller: Caller, release: () => void): void {
    const subscriber: Subscriber = new Subscriber(ws, caller, release, this.#options, () => this.#subscribers.delete(subscriber));
    this.#subscribers.add(subscriber);
  }
}
