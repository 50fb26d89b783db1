import { Hono } from 'hono';
import type { MiddlewareHandler } from 'hono';
import { secureHeaders } from 'hono/secure-headers';

/**
 * Security headers (Hono's secureHeaders). API answers, streams and refusals: nothing in them
 * runs as a page (CSP default-src 'none'), they are never framed, and pages of other origins may
 * read them (Cross-Origin-Resource-Policy cross-origin: CORS decides who). HSTS is left to the
 * TLS terminator, which knows the host's other subdomains.
 */
const COMMON = {
  crossOriginResourcePolicy: 'cross-origin',
  strictTransportSecurity: false,
  xFrameOptions: false, // superseded by CSP frame-ancestors, which the pages make configurable
} as const;

export function apiSecurityHeaders(): MiddlewareHandler {
  // overwrite false: a page's own policy (below), set by its route, stays.
  return secureHeaders({ ...COMMON, overwrite: false, contentSecurityPolicy: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } });
}

/**
 * The dashboard's pages: scripts, workers and styles from this server only, no inline script, fetches,
 * streams and WebSockets to this server only; framed only by FRAME_ANCESTORS.
 */
export function pageSecurityHeaders(frameAncestors: readonly string[]): MiddlewareHandler {
  return secureHeaders({
    ...COMMON,
    contentSecurityPolicy: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      workerSrc: ["'self'"], // the client's shared worker (assets/shared-worker.js)
      styleSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      connectSrc: ["'self'"],
      objectSrc: ["'none'"],
      baseUri: ["'self'"],
      formAction: ["'self'"],
      frameAncestors: [...frameAncestors],
    },
  });
}

/**
 * The headers apiSecurityHeaders() gives an answer, for the answers the edge writes itself (the
 * poll fast path, refusals before Hono): asked of the middleware, so the two never differ.
 */
export async function apiSecurityHeaderEntries(): Promise<Array<[string, string]>> {
  const probe = new Hono().use(apiSecurityHeaders()).get('/', (c) => c.body(null));
  return [...(await probe.request('/')).headers.entries()];
}
