import type { IncomingMessage, ServerResponse } from 'node:http';
import { Refusal } from '../../refusal.js';
import { replyRefusal } from './raw-reply.js';

/** What the API takes from a page on another origin. */
const ALLOW_METHODS = 'GET, HEAD, POST, OPTIONS';
const ALLOW_HEADERS = 'Authorization, Content-Type, If-None-Match, Last-Event-ID';
/** What such a page may read beyond the safelisted response headers. */
const EXPOSE_HEADERS = 'ETag, Retry-After, X-Progress-Source, Location, WWW-Authenticate';
/** Browsers cache a preflight this long (Chromium caps it at 2 h). */
const PREFLIGHT_MAX_AGE_SECONDS = 600;

/**
 * The one cross-origin decision (CORS_ORIGINS), applied to the raw Node response before any
 * route writes it, so the Hono routes, the fast poll path and SSE streams (which write their
 * headers straight to the socket) all carry the same headers; the WebSocket upgrade asks
 * `allowsWebSocket`. hono/cors is not used: it sends Allow-Credentials and Expose-Headers to
 * every origin, and it cannot reach the responses written without Hono.
 */
export class CorsPolicy {
  readonly #origins: ReadonlySet<string>;

  /** `origins`: exact origins (`https://app.example.com`); none: no CORS headers at all. */
  constructor(origins: readonly string[]) {
    this.#origins = new Set(origins);
  }

  get enabled(): boolean {
    return this.#origins.size > 0;
  }

  /**
   * The Vary header of every answer: it depends on the caller's token (header or cookie) and,
   * with CORS on, on the Origin, even when it carries no CORS header. Caches keep them apart.
   */
  get vary(): string {
    return this.enabled ? 'Origin, Authorization, Cookie' : 'Authorization, Cookie';
  }

  /** Whether a page on `origin` may read the API's answers. */
  allows(origin: string | undefined): boolean {
    return origin !== undefined && this.#origins.has(origin);
  }

  /**
   * Sets the CORS headers for `req` on `res` (the route's own headers are merged with them when
   * it writes), and answers a preflight itself. Returns true when the request was answered.
   */
  apply(req: IncomingMessage, res: ServerResponse): boolean {
    if (!this.enabled) return false;
    const origin = req.headers.origin;
    const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
    if (!this.allows(origin)) {
      if (!preflight || origin === undefined) return false;
      replyRefusal(res, new Refusal(403, 'origin_not_allowed', `origin ${origin} is not in CORS_ORIGINS`));
      return true;
    }
    res.setHeader('Access-Control-Allow-Origin', origin as string);
    res.setHeader('Access-Control-Allow-Credentials', 'true');
    if (!preflight) {
      res.setHeader('Access-Control-Expose-Headers', EXPOSE_HEADERS);
      return false;
    }
    res.writeHead(204, {
      'Access-Control-Allow-Methods': ALLOW_METHODS,
      'Access-Control-Allow-Headers': ALLOW_HEADERS,
      'Access-Control-Max-Age': String(PREFLIGHT_MAX_AGE_SECONDS),
    });
    res.end();
    return true;
  }

  /**
   * Whether a WebSocket upgrade may proceed: no Origin (not a browser), an origin in the list, or
   * the server's own origin (its dashboard). Any other page could otherwise open the socket with
   * the user's cookie and read their progress (cross-site WebSocket hijacking); browsers enforce
   * no CORS on WebSockets, so the server must.
   */
  allowsWebSocket(req: IncomingMessage): boolean {
    return req.headers.origin === undefined || this.trustsPage(req);
  }

  /**
   * Whether the request comes from a page this server trusts: its Origin is in CORS_ORIGINS or
   * is the server's own (`Host`). Browsers send Origin with every WebSocket handshake and every
   * POST, so a cookie-authorized write without one is refused too.
   */
  trustsPage(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return false;
    if (this.allows(origin)) return true;
    try {
      return new URL(origin).host === req.headers.host;
    } catch {
      return false;
    }
  }
}
