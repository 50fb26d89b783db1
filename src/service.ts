import { randomBytes } from 'node:crypto';
import { STATUS_CODES, createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { hostname } from 'node:os';
import { getRequestListener } from '@hono/node-server';
import type { Logger } from 'pino';
import { Authenticator } from './auth/authenticator.js';
import type { Broker } from './broker/broker.js';
import { MemoryBroker } from './broker/memory.js';
import { RedisBroker } from './broker/redis.js';
import { describeRedis } from './broker/redis-connection.js';
import type { Config } from './config.js';
import { DEFAULT_SSE_RETRY_MS } from './config.js';
import { createGenerator } from './orchestrator/create-generator.js';
import type { Generator } from './orchestrator/generator.js';
import { GeneratorMetrics, registerGeneratorMetrics } from './orchestrator/generator-metrics.js';
import type { TextSink } from './orchestrator/section-text.js';
import { Orchestrator } from './orchestrator/orchestrator.js';
import { ProgressTracker } from './progress/tracker.js';
import { accessLog } from './server/access-log.js';
import { createApp } from './server/app.js';
import { mountAt } from './server/base-path.js';
import { CorsPolicy } from './server/cors.js';
import { errorBody } from './server/errors.js';
import { Expiries } from './server/expiries.js';
import { Hub } from './server/hub.js';
import { latestReader } from './server/latest.js';
import { pollFastPath } from './server/poll.js';
import { createMetrics } from './server/metrics.js';
import { DOT_SEGMENT_ERROR, hasDotSegment } from './server/paths.js';
import type { Source } from './server/latest.js';
import { StreamRegistry } from './server/stream.js';
import { UserConnections } from './server/user-connections.js';
import { attachWebSocket } from './server/websocket.js';
import { openDatabase } from './store/database.js';
import type { DatabaseHandle } from './store/database.js';
import { BookStore } from './store/books.js';
import { Snapshotter } from './store/snapshotter.js';
import { RunStore } from './store/runs.js';
import { PgProgressStore } from './store/progress.js';
import { databaseStartupError, listenStartupError } from './startup.js';
import { isDatabaseUnavailable } from './store/failures.js';
import { FaultLog } from './fault-log.js';

/** A running server process: every part, for main.ts to stop and for tests to inspect. */
export interface Service {
  readonly url: string;
  readonly port: number;
  readonly broker: Broker;
  readonly store: PgProgressStore;
  readonly books: BookStore;
  readonly runs: RunStore;
  readonly snapshotter: Snapshotter;
  readonly orchestrator: Orchestrator;
  readonly tracker: ProgressTracker;
  readonly hub: Hub;
  readonly streams: StreamRegistry;
  /** Stops accepting, ends streams with a retry hint, takes a last snapshot, then closes the backends. */
  close(): Promise<void>;
}

export interface ServiceOptions {
  /** Where book content comes from; the one GENERATOR names by default. */
  generator?: Generator;
  /** Gets the live text of the sections this process writes. */
  onText?: TextSink;
}

/** Builds the parts from `config`, applies migrations and listens. */
export async function startService(config: Config, log: Logger, options: ServiceOptions = {}): Promise<Service> {
  const database = await openDatabase(config.databaseUrl, config.dataDir, config.backendTimeoutMs).catch((error: unknown) => {
    throw databaseStartupError(error, config, redactUrl);
  });
  const store = new PgProgressStore(database.db, database.deadline);
  const books = new BookStore(database.db, database.deadline);
  const runs = await RunStore.open(database, log);
  const { broker, source } = await createBroker(config, log);
  log.info(
    { broker: source, redis: config.redisTarget ? describeRedis(config.redisTarget) : null, database: database.kind },
    `backends: ${source === 'redis' ? 'redis' : 'in-memory'} broker, ${database.kind} database`,
  );

  // The hub is built below; it answers lastKnown only once requests arrive.
  const readLatest = latestReader(broker, source, store, (bookId) => hub.lastKnown(bookId), log);
  const owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const snapshotter = new Snapshotter({
    broker,
    store,
    intervalMs: config.snapshotIntervalMs,
    owner,
    log,
  });
  const tracker = new ProgressTracker({
    latest: broker,
    // A book Redis lacks while the database cannot answer starts from what this process knows:
    // its first state is committed to Redis and queued for the database, as persistNow does.
    recover: (bookId) => store.getProgress(bookId).catch((error: unknown) => (isDatabaseUnavailable(error) ? null : Promise.reject(error))),
    persistNow: async (state) => {
      await snapshotter.persistNow(state);
    },
  });
  const generatorMetrics = new GeneratorMetrics();
  const orchestrator = new Orchestrator({
    tracker,
    runs,
    generator: options.generator ?? createGenerator(config, generatorMetrics),
    onText: options.onText,
    latest: async (bookId) => (await broker.get(bookId)) ?? (await store.getProgress(bookId)),
    log,
    owner,
    maxGenerations: config.maxGenerations,
    leaseMs: config.runLeaseMs,
    generatorRetries: config.generatorRetries,
  });
  const hub = new Hub(broker, readLatest, log);
  const streams = new StreamRegistry(config.heartbeatMs);
  const auth = new Authenticator({ ...config.auth, publishToken: config.publishToken });
  const expiries = new Expiries();
  const userConnections = new UserConnections(config.maxConnectionsPerUser);
  const metrics = createMetrics({
    hub,
    streams,
    broker,
    storeStats: store.stats,
    snapshotter,
    orchestrator,
    websocketConnections: () => websockets.size, // attached below, read only when scraped
    faults: FaultLog.of(log),
  });
  registerGeneratorMetrics(metrics, generatorMetrics);
  const cors = new CorsPolicy(config.corsOrigins);
  const app = createApp({
    metrics,
    cors,
    tracker,
    broker,
    books,
    orchestrator,
    hub,
    readLatest,
    streams,
    log,
    maxBodyBytes: config.maxBodyBytes,
    sseRetryMs: DEFAULT_SSE_RETRY_MS,
    connectionsFull: () => streams.size + websockets.size >= config.maxSseConnections,
    maxBooksPerStream: config.maxBooksPerStream,
    auth,
    expiries,
    userConnections,
    basePath: config.basePath,
  });

  const honoListener = getRequestListener(app.fetch, { hostname: config.host });
  const fastPoll = pollFastPath(hub, source, auth);
  const logRequest = accessLog(log, config.trustProxy);
  const mount = mountAt(config.basePath);
  const vary = cors.vary;
  const server = createServer((req, res) => {
    logRequest(req, res);
    res.setHeader('Vary', vary);
    // CORS headers first, so a page on a listed origin can read every answer, refusals too.
    if (cors.apply(req, res)) return;
    // Before anything routes the path: resolved, a dot segment would reach another route.
    if (hasDotSegment(req.url ?? '')) return refuseDotSegment(res);
    // Outside BASE_PATH, or its bare prefix: answered here.
    if (mount(req, res)) return;
    if (!fastPoll(req, res)) void honoListener(req, res);
  });
  server.on('clientError', answerMalformedRequest);
  const websockets = attachWebSocket(server, {
    hub,
    heartbeatMs: config.heartbeatMs,
    maxBooksPerConnection: config.maxBooksPerStream,
    full: () => streams.size + websockets.size >= config.maxSseConnections, // SSE and WebSocket share the cap
    auth,
    expiries,
    userConnections,
    log,
    basePath: config.basePath,
    cors,
    trustProxy: config.trustProxy,
  });
  let port: number;
  try {
    port = await listen(server, config.port, config.host);
  } catch (error) {
    websockets.close();
    streams.stop();
    hub.close();
    await broker.close().catch(() => {});
    await closeDatabase(database, log);
    throw listenStartupError(error, config);
  }
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}${config.basePath}`;
  log.info({ url }, 'listening');
  if (!auth.enabled) {
    log.warn(
      config.publishToken === null
        ? 'authentication is off: anyone who reaches this server reads every book and publishes; set AUTH_JWT_SECRET or AUTH_JWKS_URL'
        : 'authentication is off: anyone who reaches this server reads every book (PUBLISH_TOKEN guards writes); set AUTH_JWT_SECRET or AUTH_JWKS_URL',
    );
  }
  snapshotter.start();
  orchestrator.begin();

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      streams.closeAll(DEFAULT_SSE_RETRY_MS);
      websockets.close();
      streams.stop();
      expiries.stop();
      hub.close();
      server.closeIdleConnections();
      // Requests in flight get a moment; sockets that never sent one (clients open spares) do not hold us.
      const force = setTimeout(() => {
        server.closeAllConnections();
        websockets.terminate();
      }, SHUTDOWN_GRACE_MS);
      await orchestrator.stop();
      await stopped;
      clearTimeout(force);
      await snapshotter.stop();
      await broker.close();
      await closeDatabase(database, log);
    })());

  return { url, port, broker, store, books, runs, snapshotter, orchestrator, tracker, hub, streams, close };
}

/** How long requests in flight may take to finish at shutdown. */
const SHUTDOWN_GRACE_MS = 1_000;

/** How long start-up waits for Redis before serving anyway (with the database fallback). */
const REDIS_STARTUP_WAIT_MS = 5_000;

async function createBroker(config: Config, log: Logger): Promise<{ broker: Broker; source: Source }> {
  if (config.redisTarget === null) return { broker: new MemoryBroker({ ttlSeconds: config.progressTtlSeconds }), source: 'memory' };
  const broker = new RedisBroker({
    target: config.redisTarget,
    keyPrefix: config.redisKeyPrefix,
    ttlSeconds: config.progressTtlSeconds,
    log,
    timeoutMs: config.backendTimeoutMs,
  });
  if (!(await broker.ready(REDIS_STARTUP_WAIT_MS))) log.warn('redis is not answering; serving from the database until it does');
  return { broker, source: 'redis' };
}

function refuseDotSegment(res: ServerResponse): void {
  const body = JSON.stringify(errorBody(DOT_SEGMENT_ERROR.code, DOT_SEGMENT_ERROR.message));
  res.writeHead(400, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
}

/** Requests Node's parser refuses (bad framing, huge headers) get the API's JSON error too. */
function answerMalformedRequest(error: Error & { code?: string }, socket: Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const [status, code, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'headers_too_large', 'request headers are too large']
      : [400, 'bad_request', 'malformed HTTP request'];
  const body = JSON.stringify(errorBody(code, message));
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

async function closeDatabase(database: DatabaseHandle, log: Logger): Promise<void> {
  try {
    await database.close();
  } catch (error) {
    log.warn({ err: (error as Error).message }, 'closing the database failed');
  }
}

/** The URL without its password, for logs. */
export function redactUrl(raw: string): string {
  const url = new URL(raw);
  if (url.password) url.password = '***';
  return url.toString();
}
