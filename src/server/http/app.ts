import { Hono } from 'hono';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Authenticator } from '../../auth/authenticator.js';
import type { Orchestrator } from '../../orchestrator/orchestrator.js';
import type { ProgressTracker } from '../../progress/tracker.js';
import { Refusal } from '../../refusal.js';
import type { BookStore } from '../../store/books.js';
import type { ConnectionCap } from '../delivery/connection-cap.js';
import type { Expiries } from '../delivery/expiries.js';
import type { TextLog } from '../../broker/text-log.js';
import type { Hub } from '../delivery/hub.js';
import type { NewestStates } from '../delivery/newest-state.js';
import { recentProgress } from '../delivery/recent-books.js';
import type { StreamRegistry } from '../delivery/stream-registry.js';
import { WEBSOCKET_PATH } from '../delivery/websocket-protocol.js';
import { authenticate } from './auth.js';
import type { AppEnv, TrustedPages } from './auth.js';
import { refusalResponse, toErrorResponse } from './errors.js';
import { bookRoutes } from './routes/books.js';
import { progressRoutes } from './routes/progress.js';
import { streamRoutes } from './routes/streams.js';
import { WEB_ROOT, webRoutes } from './routes/web.js';

export interface AppDeps {
  tracker: ProgressTracker;
  books: BookStore;
  orchestrator: Orchestrator;
  hub: Hub;
  /** Live text of the sections being written. */
  texts: TextLog;
  /** The newest state of a book, for polls and book lists. */
  newest: NewestStates;
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
  /** BASE_PATH, for the URLs the answers carry (links, Location); the routes themselves are written from `/`. */
  basePath?: string;
}

/** The HTTP API. Touches neither process.env nor sockets: service.ts and tests serve it. */
export function createApp(deps: AppDeps) {
  const app = new Hono<AppEnv>();

  app.get('/healthz', (c) => c.json({ success: true, data: { status: 'ok' } }));
  // Without an Upgrade header (a proxy dropped it, or a plain fetch) say what is missing, not 404;
  // before authentication, so an operator sees it whatever the token.
  app.get(WEBSOCKET_PATH, (c) =>
    refusalResponse(c, new Refusal(426, 'upgrade_required', 'this endpoint takes a WebSocket: send Connection: Upgrade and Upgrade: websocket'), { Upgrade: 'websocket' }),
  );
  app.use('/api/*', authenticate(deps.auth, undefined, deps.pages));
  // Open mode keeps /metrics open, as the rest; with authentication it needs `admin`.
  app.get('/metrics', authenticate(deps.auth, deps.auth.enabled ? 'admin' : undefined), async (c) => c.body(await deps.metrics.metrics(), 200, { 'Content-Type': deps.metrics.contentType }));
  const streams = streamRoutes({
    ...deps,
    recentStates: recentProgress(deps.books, deps.newest),
    findNewest: deps.newest.find,
  });
  app.route('/api/ai/progress', streams.perBook);
  app.route('/api/ai/progress', progressRoutes({ ...deps, findNewest: deps.newest.find }));
  app.route('/api/ai/stream', streams.multiplexed);
  app.route('/', webRoutes(WEB_ROOT, deps.basePath ?? ''));
  app.route('/api/books', bookRoutes(deps));

  app.notFound((c) => refusalResponse(c, new Refusal(404, 'not_found', `no route for ${c.req.method} ${c.req.path}`)));
  app.onError((error, c) => toErrorResponse(error, c, deps.log));
  return app;
}
