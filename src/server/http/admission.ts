import type { MiddlewareHandler } from 'hono';
import { withDeadline } from '../../request-deadline.js';
import type { Admission } from '../delivery/connection-cap.js';
import type { AppEnv } from './auth.js';

/** Refuses a publish (any POST) while `admission` says the process is overloaded: 503 `overloaded` with Retry-After. */
export function publishAdmission(admission: Admission | null): MiddlewareHandler<AppEnv> {
  return async function publishAdmission(c, next) {
    if (admission !== null && c.req.method === 'POST') admission.check();
    await next();
  };
}

/** One deadline for the whole request (BACKEND_TIMEOUT_MS): every backend call inside it gets what is left. */
export function requestDeadline(ms: number): MiddlewareHandler<AppEnv> {
  return async function requestDeadline(_c, next) {
    await withDeadline(ms, () => next());
  };
}
