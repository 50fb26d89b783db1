import { Hono } from 'hono';
import { SCOPES, hasScope } from '../../../auth/caller.js';
import type { z } from 'zod';
import type { SessionSchema } from '../api-schemas.js';
import type { AppEnv } from '../auth.js';

export interface SessionRoutesOptions {
  /** Whether tokens are checked (AUTH_JWT_SECRET / AUTH_JWKS_URL). */
  authEnabled: boolean;
  staleAfterMs: number;
}

/**
 * `GET /api/session`: who this request is, for the dashboard (what to show, which buttons).
 * With authentication on, no token, an expired or a forged one is the 401 of the layer in
 * front; a valid token of any scope is answered.
 */
export function sessionRoutes(options: SessionRoutesOptions) {
  const app = new Hono<AppEnv>();
  app.get('/', (c) => {
    const caller = c.get('caller');
    return c.json({
      success: true,
      data: {
        auth: options.authEnabled,
        sub: caller.sub,
        tenant: caller.tenant,
        anyTenant: caller.anyTenant,
        // What the caller may do, admin spelled out (it implies every other scope).
        scopes: SCOPES.filter((scope) => hasScope(caller, scope)),
        expiresAt: caller.expiresAt,
        staleAfterSeconds: Math.round(options.staleAfterMs / 1000),
      } satisfies z.input<typeof SessionSchema>,
    });
  });
  return app;
}
