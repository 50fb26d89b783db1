import { Hono } from 'hono';
import type { Logger } from 'pino';
import type { Authenticator } from '../auth/authenticator.js';
import type { CorsPolicy } from './cors.js';
import type { Broker } from '../broker/broker.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';
import type { ProgressTracker } from '../progress/tracker.js';
import type { BookStore } from '../store/books.js';
import { authenticate } from './auth.js';
import type { AppEnv } from './auth.js';
import { bookRoutes, recentProgress } from './book-routes.js';
import { errorBody, toErrorResponse } from './errors.js';
import type { Expiries } from './expiries.js';
import type { Hub } from './hub.js';
import type { ReadLatest } from './latest.js';
import { progressRoutes } from './progress-routes.js';
import type { Registry } from 'prom-client';
import type { StreamRegistry } from './stream.js';
import { streamRoutes } from './stream-routes.js';
import type { UserConnections } from './user-connections.js';
import { WEB_ROOT, webRoutes } from './web-routes.js';
import { WEBSOCKET_PATH } from './websocket.js';

export interface AppDeps {
  tracker: ProgressTracker;
  broker: Broker;
  books: BookStore;
  orchestrator: Orchestrator;
  hub: Hub;
  readLatest: ReadLatest;
  streams: StreamRegistry;
  log: Logger;
  maxBodyBytes: number;
  sseRetryMs: number;
  /** True while the process holds its maximum of streams and WebSockets (MAX_SSE_CONNECTIONS). */
  connectionsFull: () => boolean;
  maxBooksPerStream: number;
  /** Who a request is; every /api route and /metrics asks it. */
  auth: Authenticator;
  /** Which pages may send cookie-authenticated writes (CORS_ORIGINS, or the server's own). */
  cors: CorsPolicy;
  expiries: Expiries;
  userConnections: UserConnections;
  metrics: Registry;
  /** BASE_PATH, for the URLs the answers carry (links, Location); the routes themselves are written from `/`. */
  basePath?: string;
}

/** The HTTP API. Touches neither process.env nor sockets: main.ts and tests serve it. */
export function createApp(deps: AppDeps) {
  const app = new Hono<AppEnv>();

  app.get('/healthz', (c) => c.json({ success: true, data: { status: 'ok' } }));
  // Without an Upgrade header (a proxy dropped it, or a plain fetch) say what is missing, not 404;
  // before authentication, so an operator sees it whatever the token.
  app.get(WEBSOCKET_PATH, (c) => c.json(errorBody('upgrade_required', 'this endpoint takes a WebSocket: send Connection: Upgrade and Upgrade: websocket'), 426, { Upgrade: 'websocket' }));
  app.use('/api/*', authenticate(deps.auth, undefined, deps.cors));
  // Open mode keeps /metrics open, as the rest; with authentication it needs `admin`.
  app.get('/metrics', authenticate(deps.auth, deps.auth.enabled ? 'admin' : undefined), async (c) => c.body(await deps.metrics.metrics(), 200, { 'Content-Type': deps.metrics.contentType }));
  const streams = streamRoutes({
    ...deps,
    recentStates: recentProgress(deps.books, deps.broker),
  });
  app.route('/api/ai/progress', streams.perBook);
  app.route('/api/ai/progress', progressRoutes(deps));
  app.route('/api/ai/stream', streams.multiplexed);
  app.route('/', webRoutes(WEB_ROOT, deps.basePath ?? ''));
  app.route('/api/books', bookRoutes(deps));

  app.notFound((c) => c.json(errorBody('not_found', `no route for ${c.req.method} ${c.req.path}`), 404));
  app.onError((error, c) => toErrorResponse(error, c, deps.log));
  return app;
}
