import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { getRequestListener } from '@hono/node-server';
import type { Logger } from 'pino';
import type { Authenticator } from '../../auth/authenticator.js';
import { Refusal } from '../../refusal.js';
import type { Hub } from '../delivery/hub.js';
import type { Source } from '../delivery/newest-state.js';
import { WEBSOCKET_PATH } from '../delivery/websocket-protocol.js';
import type { WebSocketEndpoint } from '../delivery/websocket-upgrade.js';
import { accessLog, clientAddress } from './access-log.js';
import { mountAt, stripBasePath } from './base-path.js';
import type { CorsPolicy } from './cors.js';
import { dotSegmentRefusal, hasDotSegment } from './dot-segments.js';
import { pollFastPath } from './fast-poll.js';
import { endWithRefusal, replyRefusal } from './raw-reply.js';

export interface EdgeOptions {
  /** The Hono app's fetch: every request the edge does not answer itself. */
  fetch: Parameters<typeof getRequestListener>[0];
  websockets: WebSocketEndpoint;
  cors: CorsPolicy;
  /** For the poll fast path. */
  hub: Hub;
  source: Source;
  auth: Authenticator;
  /** BASE_PATH ('' for none). */
  basePath: string;
  /** HOST, for the URLs Hono builds. */
  host: string;
  /** TRUST_PROXY, for client addresses in logs. */
  trustProxy: boolean;
  /** HEADERS_TIMEOUT_MS and REQUEST_TIMEOUT_MS: a client that sends its request slowly is answered 408 and closed. */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** The security headers every answer carries, Hono's or the edge's own (http/security-headers.ts). */
  securityHeaders: ReadonlyArray<readonly [string, string]>;
  log: Logger;
}

/**
 * How often Node looks for requests past their timeouts (30 s by default): a slow client is
 * closed within this long of its deadline. It walks only connections with a request still
 * arriving, not open streams.
 */
const TIMEOUT_CHECK_INTERVAL_MS = 1_000;

/**
 * The raw node:http server, and what every request passes before Hono: the access log, the
 * Vary and CORS headers, the dot-segment refusal, the base path, then the poll fast path.
 * WebSocket upgrades pass the same checks (and the origin check) before the endpoint takes
 * them; requests Node's parser refuses get the JSON error too.
 */
export function createEdge(options: EdgeOptions): Server {
  const { cors, log } = options;
  const honoListener = getRequestListener(options.fetch, { hostname: options.host });
  const fastPoll = pollFastPath(options.hub, options.source, options.auth);
  const logRequest = accessLog(log, options.trustProxy);
  const mount = mountAt(options.basePath);
  const vary = cors.vary;
  const timeouts = { headersTimeout: options.headersTimeoutMs, requestTimeout: options.requestTimeoutMs, connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS };
  const refuse = (socket: Duplex, refusal: Refusal) => endWithRefusal(socket, refusal, options.securityHeaders);
  // Each socket's current response: a parse error (a pipelined request) while it is being written,
  // a stream say, must not put a refusal in the middle of it (as Node's own handler does not).
  const answering = new WeakMap<Duplex, ServerResponse>();
  const server = createServer(timeouts, (req, res) => {
    answering.set(req.socket, res);
    res.once('close', () => answering.get(req.socket) === res && answering.delete(req.socket));
    logRequest(req, res);
    // Set first: the answers written here (fast path, refusals, streams) carry them; Hono's override them with the same.
    for (const [name, value] of options.securityHeaders) res.setHeader(name, value);
    res.setHeader('Vary', vary);
    // CORS headers first, so a page on a listed origin can read every answer, refusals too.
    if (cors.apply(req, res)) return;
    // Before anything routes the path: resolved, a dot segment would reach another route.
    if (hasDotSegment(req.url ?? '')) return replyRefusal(res, dotSegmentRefusal());
    // Outside BASE_PATH, or its bare prefix: answered here.
    if (mount(req, res)) return;
    if (!fastPoll(req, res)) void honoListener(req, res);
  });
  server.on('clientError', (error: Error & { code?: string }, socket: Duplex) => {
    if (answering.get(socket)?.headersSent) return void socket.destroy();
    refuse(socket, malformedRequestRefusal(error));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const [path, query] = splitUrl(req.url ?? '');
    if (hasDotSegment(path)) return refuse(socket, dotSegmentRefusal());
    if (stripBasePath(path, options.basePath) !== WEBSOCKET_PATH) return refuse(socket, new Refusal(404, 'not_found', `no WebSocket endpoint at ${path}`));
    if (!cors.allowsWebSocket(req)) {
      log.warn({ client: clientAddress(req, options.trustProxy), origin: req.headers.origin }, 'websocket refused: origin not allowed');
      return refuse(socket, new Refusal(403, 'origin_not_allowed', `origin ${req.headers.origin} may not open this WebSocket`));
    }
    options.websockets.upgrade(req, socket, head, query).catch((error: unknown) => {
      refuse(socket, error instanceof Refusal ? error : new Refusal(503, 'service_unavailable', 'retry later'));
    });
  });
  return server;
}

/** Listens on `port` (0: any free one) and resolves to the port. */
export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Requests Node's parser refuses (bad framing, huge headers, too slow) get the API's JSON error too. */
function malformedRequestRefusal(error: Error & { code?: string }): Refusal {
  return error.code === 'HPE_HEADER_OVERFLOW'
    ? new Refusal(431, 'headers_too_large', 'request headers are too large')
    : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new Refusal(408, 'request_timeout', 'the request was not received in time (HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS)')
      : new Refusal(400, 'bad_request', 'malformed HTTP request');
}

/** The path and the query (null when there is none) of a request URL. */
function splitUrl(url: string): [string, string | null] {
  const at = url.indexOf('?');
  return at === -1 ? [url, null] : [url.slice(0, at), url.slice(at + 1)];
}
