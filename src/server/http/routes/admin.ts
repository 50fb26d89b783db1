import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import { BookIdSchema, TenantSchema } from '../../../progress/schema.js';
import type { ProgressTracker } from '../../../progress/tracker.js';
import { Refusal } from '../../../refusal.js';
import type { BookAdoption } from '../../../store/adopt.js';
import { callerWith } from '../auth.js';
import type { AppEnv } from '../auth.js';
import type { AdminStatus } from '../admin-status.js';
import { readJson } from '../params.js';

/** Books one adopt request may name. */
export const MAX_ADOPT_BOOKS = 1_000;

/** `POST /api/admin/adopt`: books without a tenant given to `tenant`, named or all of them. */
export const AdoptSchema = z.union([
  z.object({ tenant: TenantSchema, books: z.array(BookIdSchema).min(1).max(MAX_ADOPT_BOOKS) }).strict(),
  z.object({ tenant: TenantSchema, untenanted: z.literal(true) }).strict(),
]);

export interface AdminRoutesOptions {
  /** Whether tokens are checked: without, the status is open as /metrics is. */
  authEnabled: boolean;
  status: () => Promise<AdminStatus>;
  adoption: BookAdoption;
  tracker: ProgressTracker;
  maxBodyBytes: number;
}

/**
 * `/api/admin`: the operator view's status (GET /status), and adopting books without a tenant
 * (POST /adopt). With authentication on both need `admin`, which is cross-tenant.
 */
export function adminRoutes(options: AdminRoutesOptions) {
  const app = new Hono<AppEnv>();

  app.get('/status', async (c) => {
    if (options.authEnabled) callerWith(c, 'admin');
    return c.json({ success: true, data: await options.status() });
  });

  app.post('/adopt', bodyLimit({ maxSize: options.maxBodyBytes }), async (c) => {
    // `admin` is cross-tenant (anyTenant): open mode without PUBLISH_TOKEN has it too.
    callerWith(c, 'admin');
    const parsed = AdoptSchema.safeParse(await readJson(c));
    if (!parsed.success) {
      throw new Refusal(400, 'invalid_request', 'the body must be {"tenant": "acme", "books": ["bookId", …]} or {"tenant": "acme", "untenanted": true}');
    }
    const { tenant } = parsed.data;
    const named = 'books' in parsed.data ? [...new Set(parsed.data.books)] : null;
    const { adopted, others } = await options.adoption.adopt(tenant, named);
    const result = { tenant, adopted: [] as string[], unchanged: [] as string[], refused: [] as Array<{ bookId: string; reason: string }> };
    // The rows are the tenant's now; the state in the broker gets a version that says so.
    const candidates = [...adopted, ...[...others].filter(([, owner]) => owner === null).map(([bookId]) => bookId)];
    for (const bookId of candidates) {
      const { outcome } = await options.tracker.assignTenant(bookId, tenant);
      if (outcome === 'assigned') result.adopted.push(bookId);
      else if (outcome === 'unchanged') result.unchanged.push(bookId);
      else if (outcome === 'taken') result.refused.push({ bookId, reason: 'it belongs to another tenant' });
      else if (adopted.includes(bookId)) result.adopted.push(bookId);
      else result.refused.push({ bookId, reason: 'no such book' });
    }
    for (const [bookId, owner] of others) if (owner !== null && owner !== tenant) result.refused.push({ bookId, reason: 'it belongs to another tenant' });
    return c.json({ success: true, data: result });
  });
  return app;
}
