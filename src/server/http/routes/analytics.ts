import { Hono } from 'hono';
import { z } from 'zod';
import type { Analytics } from '../../../analytics/queries.js';
import type { EtaAccuracy } from '../../../analytics/eta-accuracy.js';
import { Refusal } from '../../../refusal.js';
import { PRIVATE_HEADERS, callerWith } from '../auth.js';
import type { AppEnv } from '../auth.js';

const DAY_MS = 86_400_000;
/** The longest window one request may ask for. */
export const MAX_ANALYTICS_WINDOW_MS = 366 * DAY_MS;

/** Epoch ms, or an ISO 8601 date. */
const Instant = z.union([z.coerce.number().int().min(0), z.string().datetime({ offset: true }).transform((s) => Date.parse(s))]);
const QuerySchema = z.object({
  since: Instant.optional(),
  until: Instant.optional(),
  tenant: z.string().min(1).max(200).optional(),
});

export interface AnalyticsWindowQuery {
  since: number;
  until: number;
  tenant?: string;
}

export interface AnalyticsRoutesOptions {
  /** The aggregates and the ETA's accuracy on the window's completed runs. */
  analytics: (window: AnalyticsWindowQuery) => Promise<Analytics & { eta: EtaAccuracy }>;
  now?: () => number;
}

/**
 * `GET /api/analytics?since=&until=[&tenant=]`: the runs started in the window, their durations
 * per run, step, chapter and section, throughput and the ETA's accuracy. A caller reads its own
 * tenant's; `admin` (and the open mode) reads all tenants, or one with `tenant`.
 */
export function analyticsRoutes(options: AnalyticsRoutesOptions) {
  const app = new Hono<AppEnv>();
  const now = options.now ?? Date.now;
  app.get('/', async (c) => {
    const caller = callerWith(c, 'progress:read');
    const parsed = QuerySchema.safeParse({ since: c.req.query('since') || undefined, until: c.req.query('until') || undefined, tenant: c.req.query('tenant') || undefined });
    if (!parsed.success) throw new Refusal(400, 'invalid_query', 'since and until are epoch milliseconds or ISO 8601 dates; tenant a tenant id');
    const until = parsed.data.until ?? now();
    const since = parsed.data.since ?? until - DAY_MS;
    if (since >= until) throw new Refusal(400, 'invalid_query', 'since must be before until');
    if (until - since > MAX_ANALYTICS_WINDOW_MS) throw new Refusal(400, 'invalid_query', `the window may span ${MAX_ANALYTICS_WINDOW_MS / DAY_MS} days at most`);
    let tenant: string | undefined;
    if (caller.anyTenant) tenant = parsed.data.tenant;
    else {
      // A token limited to some books sees no tenant-wide figures; another tenant's are not found.
      if (caller.books !== null) throw new Refusal(404, 'not_found', 'no analytics for a token limited to some books');
      if (parsed.data.tenant !== undefined && parsed.data.tenant !== caller.tenant) throw new Refusal(404, 'not_found', `no tenant ${parsed.data.tenant}`);
      tenant = caller.tenant ?? '';
    }
    const data = await options.analytics({ since, until, ...(tenant === undefined ? {} : { tenant }) });
    return c.json({ success: true, data: { ...data, tenant: tenant ?? null } }, 200, PRIVATE_HEADERS);
  });
  return app;
}
