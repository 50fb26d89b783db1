import { Hono } from 'hono';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { BookTimeline } from '../../analytics/queries.js';
import type { Authenticator } from '../../auth/authenticator.js';
import type { TextLog } from '../../broker/text-log.js';
import type { Orchestrator } from '../../orchestrator/orchestrator.js';
import type { ProgressTracker } from '../../progress/tracker.js';
import { Refusal } from '../../refusal.js';
import type { BookStore } from '../../store/books.js';
import type { Admission, ConnectionCap } from '../delivery/connection-cap.js';
import type { Expiries } from '../delivery/expiries.js';
import type { Hub } from '../delivery/hub.js';
import type { NewestStates } from '../delivery/newest-state.js';
import { recentProgress } from '../delivery/recent-books.js';
import type { StreamRegistry } from '../delivery/stream-registry.js';
import { WEBSOCKET_PATH } from '../delivery/websocket-protocol.js';
import { publishAdmission, requestDeadline } from './admission.js';
import type { AdminStatus } from './admin-status.js';
import type { BookAdoption } from '../../store/adopt.js';
import { authenticate } from './auth.js';
import { publishQuota } from './publish-quota.js';
import type { TenantQuota } from './publish-quota.js';
import type { Readiness } from './readiness.js';
import { apiSecurityHeaders } from './security-headers.js';
import type { AppEnv, TrustedPages } from './auth.js';
import { refusalResponse, toErrorResponse } from './errors.js';
import { analyticsRoutes } from './routes/analytics.js';
import type { AnalyticsRoutesOptions } from './routes/analytics.js';
import { adminRoutes } from './routes/admin.js';
import { bookRoutes } from './routes/books.js';
import { docsRoutes } from './routes/docs.js';
import { progressRoutes } from './routes/progress.js';
import { sessionRoutes } from './routes/session.js';
import { streamRoutes } from './routes/streams.js';
import { textRoutes } from './routes/text.js';
import { WEB_ROOT, webRoutes } from './routes/web.js';

export interface AppDeps {
  tracker: ProgressTracker;
  books: BookStore;
  orchestrator: Orchestrator;
  hub: Hub;
  /** The newest state of a book, for polls and book lists. */
  newest: NewestStates;
  /** The live text of the sections being written. */
  texts: TextLog;
  streams: StreamRegistry;
  log: Logger;
  maxBodyBytes: number;
  sseRetryMs: number;
  /** MAX_SSE_CONNECTIONS and MAX_CONNECTIONS_PER_USER, shared with the WebSockets. */
  cap: ConnectionCap;
  maxBooksPerStream: number;
  /** Who a request is; every /api route and /metrics asks it. */
  auth: Authenticator;
  /** Which pages may send cookie-authenticated writes (CORS_ORIGINS, or the server's own). */
  pages: TrustedPages;
  expiries: Expiries;
  metrics: Registry;
  readiness: Readiness;
  /** MAX_PUBLISHES_PER_SECOND_PER_TENANT; null: no limit. */
  publishQuota: TenantQuota | null;
  /** BACKEND_TIMEOUT_MS: bounds each books API request as a whole; absent: each call has its own bound only. */
  requestDeadlineMs?: number;
  /** Refuses publishes while the process is overloaded (LoadMonitor); absent: never. */
  load?: Admission | null;
  /** BASE_PATH, for the URLs the answers carry (links, Location); the routes themselves are written from `/`. */
  basePath?: string;
  /** FRAME_ANCESTORS, for the dashboard's pages. */
  frameAncestors?: readonly string[];
  /** STALE_AFTER_SECONDS in ms: the books API marks a silent running book `stalledSince`. */
  staleAfterMs: number;
  /** The latest recorded run of a book (analytics); null: none recorded. */
  timeline: (bookId: string) => Promise<BookTimeline | null>;
  /** GET /api/analytics: the aggregates of a window. */
  analytics: AnalyticsRoutesOptions['analytics'];
  /** The operator view's answer (GET /api/admin/status). */
  adminStatus: () => Promise<AdminStatus>;
  /** Gives books without a tenant to one (POST /api/admin/adopt). */
  adoption: BookAdoption;
}

/** The HTTP API. Touches neither process.env nor sockets: service.ts and tests serve it. */
export function createApp(deps: AppDeps) {
  const app = new Hono<AppEnv>();

  app.use('*', apiSecurityHeaders());
  app.get('/healthz', (c) => c.json({ success: true, data: { status: 'ok' } }));
  app.get('/readyz', async (c) => {
    const report = await deps.readiness.check();
    if (report.ready) return c.json({ success: true, data: report });
    const why = report.draining ? 'shutting down' : report.overloaded ? 'overloaded' : [report.broker === 'down' && 'the broker', report.database === 'down' && 'the database'].filter(Boolean).join(' and ') + ' not answering';
    return refusalResponse(c, new Refusal(503, 'not_ready', `not ready: ${why}`, { details: { ...report } }));
  });
  // Without an Upgrade header (a proxy dropped it, or a plain fetch) say what is missing, not 404;
  // before authentication, so an operator sees it whatever the token.
  app.get(WEBSOCKET_PATH, (c) =>
    refusalResponse(c, new Refusal(426, 'upgrade_required', 'this endpoint takes a WebSocket: send Connection: Upgrade and Upgrade: websocket'), { Upgrade: 'websocket' }),
  );
  app.route('/', docsRoutes(deps.basePath ?? '', deps.frameAncestors ?? ["'self'"]));
  app.use('/api/*', authenticate(deps.auth, undefined, deps.pages));
  // Open mode keeps /metrics open, as the rest; with authentication it needs `admin`.
  app.get('/metrics', authenticate(deps.auth, deps.auth.enabled ? 'admin' : undefined), async (c) => c.body(await deps.metrics.metrics(), 200, { 'Content-Type': deps.metrics.contentType }));
  const streams = streamRoutes({
    ...deps,
    recentStates: recentProgress(deps.books, deps.newest),
    findNewest: deps.newest.find,
  });
  app.route('/api/ai/progress', streams.perBook);
  app.use('/api/ai/progress/:bookId', publishAdmission(deps.load ?? null));
  app.use('/api/ai/progress/:bookId/text', publishAdmission(deps.load ?? null));
  // Text appends count as publishes: one bucket per tenant for both.
  const quota = publishQuota(deps.publishQuota);
  app.use('/api/ai/progress/:bookId', quota);
  app.use('/api/ai/progress/:bookId/text', quota);
  app.route('/api/ai/progress', progressRoutes({ ...deps, findNewest: deps.newest.find }));
  app.route('/api/ai/progress', textRoutes({ ...deps, findNewest: deps.newest.find }));
  app.route('/api/ai/stream', streams.multiplexed);
  app.route('/', webRoutes(WEB_ROOT, deps.basePath ?? '', deps.frameAncestors ?? ["'self'"]));
  if (deps.requestDeadlineMs !== undefined) app.use('/api/books/*', requestDeadline(deps.requestDeadlineMs));
  app.route('/api/books', bookRoutes(deps));
  app.route('/api/analytics', analyticsRoutes(deps));
  app.route('/api/admin', adminRoutes({ authEnabled: deps.auth.enabled, status: deps.adminStatus, adoption: deps.adoption, tracker: deps.tracker, maxBodyBytes: deps.maxBodyBytes }));
  app.route('/api/session', sessionRoutes({ authEnabled: deps.auth.enabled, staleAfterMs: deps.staleAfterMs }));

  app.notFound((c) => refusalResponse(c, new Refusal(404, 'not_found', `no route for ${c.req.method} ${c.req.path}`)));
  app.onError((error, c) => toErrorResponse(error, c, deps.log));
  return app;
}
