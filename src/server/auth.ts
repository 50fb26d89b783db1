import type { MiddlewareHandler } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';

/**
 * Guards the endpoints that change state (publishing progress, starting books) with
 * `Authorization: Bearer <PUBLISH_TOKEN>`; without a token configured they stay open.
 */
export function requirePublishToken(token: string | null): MiddlewareHandler {
  if (token === null) {
    return async function publishIsOpen(_c, next) {
      await next();
    };
  }
  return bearerAuth({ token });
}
