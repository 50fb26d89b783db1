import type { IncomingMessage } from 'node:http';
import type { HttpBindings } from '@hono/node-server';
import type { Context, MiddlewareHandler } from 'hono';
import type { Authenticator } from '../../auth/authenticator.js';
import { TENANT_HEADER, requireScope } from '../../auth/authenticator.js';
import type { Caller, Scope } from '../../auth/caller.js';
import { credentialsOf, findToken } from '../../auth/credentials.js';
import { authRefusal } from '../../auth/errors.js';

/** The Hono environment of every route: Node's bindings, and the caller `authenticate` found. */
export type AppEnv = { Bindings: HttpBindings; Variables: { caller: Caller } };

/**
 * Responses that depend on who asks must never be served to someone else from a cache. (Their
 * Vary header is set for every answer by the edge: CorsPolicy.vary.)
 */
export const PRIVATE_HEADERS = { 'Cache-Control': 'private, no-cache' } as const;

/** Which pages may send cookie-authorized writes: the edge's CorsPolicy (CORS_ORIGINS, or the server's own). */
export interface TrustedPages {
  trustsPage(req: IncomingMessage): boolean;
}

/** The header's single value (Node joins repeated custom headers with ", "). */
export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Methods that change state: a browser sends them cross-site with the user's cookie (CSRF). */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Finds the caller of every request below it (401 when auth is on and there is no valid
 * token) and, with `scope`, refuses callers without it (403). With `pages`, a write authorized
 * by the cookie alone is refused (403 origin_not_allowed) unless it comes from a trusted page:
 * the browser attaches the cookie to requests from any page, including other sites' forms.
 */
export function authenticate(auth: Authenticator, scope?: Scope, pages?: TrustedPages): MiddlewareHandler<AppEnv> {
  return async function authenticateRequest(c, next) {
    const incoming = c.env.incoming;
    const search = incoming.url?.includes('?') ? new URL(c.req.url).searchParams : null;
    const credentials = credentialsOf(incoming.headers, search);
    const caller = await auth.authenticate(credentials, headerValue(incoming.headers[TENANT_HEADER]));
    if (auth.enabled && pages !== undefined && !SAFE_METHODS.has(incoming.method ?? 'GET') && findToken(credentials).from === 'cookie' && !pages.trustsPage(incoming)) {
      throw authRefusal('origin_not_allowed', 'a write authorized by the booksai_token cookie must come from a page of this server or of CORS_ORIGINS');
    }
    if (scope !== undefined) requireScope(caller, scope);
    c.set('caller', caller);
    await next();
    c.res.headers.set('Cache-Control', PRIVATE_HEADERS['Cache-Control']);
  };
}

/** The caller of this request, refused unless it has `scope`. */
export function callerWith(c: Context<AppEnv>, scope: Scope): Caller {
  const caller = c.get('caller');
  requireScope(caller, scope);
  return caller;
}
