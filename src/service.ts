import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { Authenticator } from './auth/authenticator.js';
import type { Broker, DirtyClaims } from './broker/broker.js';
import { MemoryBroker } from './broker/memory.js';
import { MemoryTextLog } from './broker/memory-text.js';
import { RedisBroker } from './broker/redis.js';
import { RedisTextLog } from './broker/redis-text.js';
import { describeRedis } from './broker/redis-connection.js';
import type { TextLog } from './broker/text-log.js';
import type { Config } from './config.js';
import { DEFAULT_SSE_RETRY_MS } from './config.js';
import { FaultLog } from './fault-log.js';
import { createGenerator } from './orchestrator/create-generator.js';
import type { Generator } from './orchestrator/generator.js';
import { GeneratorMetrics, registerGeneratorMetrics } from './orchestrator/generator-metrics.js';
import type { TextSink } from './orchestrator/section-text.js';
import { Orchestrator } from './orchestrator/orchestrator.js';
import { ProgressTracker } from './progress/tracker.js';
import { LoadMonitor } from './overload.js';
import { ConnectionCap } from './server/delivery/connection-cap.js';
import { Expiries } from './server/delivery/expiries.js';
import { Hub } from './server/delivery/hub.js';
import { NewestStates } from './server/delivery/newest-state.js';
import { StreamRegistry } from './server/delivery/stream-registry.js';
import { UserConnections } from './server/delivery/user-connections.js';
import { WebSocketEndpoint } from './server/delivery/websocket-upgrade.js';
import { CorsPolicy } from './server/edge/cors.js';
import { createEdge, listen } from './server/edge/listener.js';
import { createApp } from './server/http/app.js';
import { EtaRefresher, DEFAULT_ETA_HISTORY_RUNS } from './analytics/eta-refresher.js';
import { learnedEstimate } from './analytics/learned-eta.js';
import { etaAccuracy } from './analytics/eta-accuracy.js';
import { analytics, bookTimeline, recentCompletedRuns } from './analytics/queries.js';
import { TimelineRecorder } from './analytics/recorder.js';
import { DEFAULT_TIMELINE_FLUSH_MS, TimelineFeed } from './analytics/timeline-feed.js';
import { createMetrics, registerTimelineMetrics } from './server/http/metrics.js';
import { TenantQuota } from './server/http/publish-quota.js';
import { Readiness } from './server/http/readiness.js';
import { apiSecurityHeaderEntries } from './server/http/security-headers.js';
import { databaseStartupError, listenStartupError } from './startup.js';
import { adminStatus } from './server/http/admin-status.js';
import { BookAdoption } from './store/adopt.js';
import { BookStore } from './store/books.js';
import { openDatabase } from './store/database.js';
import type { DatabaseHandle } from './store/database.js';
import { PgProgressStore } from './store/progress.js';
import { RunStore } from './store/runs.js';
import { Snapshotter } from './store/snapshotter.js';
import { UrgentStates } from './store/urgent-states.js';

/** A running server process: every part, for main.ts to stop and for tests to inspect. */
export interface Service {
  readonly url: string;
  readonly port: number;
  readonly broker: Broker;
  /** The live text of the sections being written. */
  readonly texts: TextLog;
  readonly store: PgProgressStore;
  readonly books: BookStore;
  readonly runs: RunStore;
  readonly snapshotter: Snapshotter;
  readonly orchestrator: Orchestrator;
  readonly tracker: ProgressTracker;
  readonly hub: Hub;
  readonly streams: StreamRegistry;
  /** Records every book's run timeline from the committed states, in batches. */
  readonly timelines: TimelineFeed;
  /** The learned ETA model, relearned from the recorded runs in the background. */
  readonly eta: EtaRefresher;
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
    throw databaseStartupError(error, config);
  });
  const store = new PgProgressStore(database.db, database.deadline);
  const books = new BookStore(database.db, database.deadline);
  const runs = await RunStore.open(database, log);
  const { broker, texts, source } = await createBroker(config, log);
  log.info(
    { broker: source, redis: config.redisTarget ? describeRedis(config.redisTarget) : null, database: database.kind },
    `backends: ${source === 'redis' ? 'redis' : 'in-memory'} broker, ${database.kind} database`,
  );

  // The hub is built below; it answers lastKnown only once requests arrive.
  const newest = new NewestStates({ broker, source, store, log, lastKnown: (bookId) => hub.lastKnown(bookId) });
  const owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const timelines = new TimelineFeed({ recorder: new TimelineRecorder(database.db, database.deadline), log, intervalMs: Math.min(config.snapshotIntervalMs, DEFAULT_TIMELINE_FLUSH_MS) });
  const snapshotter = new Snapshotter({ broker, store, intervalMs: config.snapshotIntervalMs, owner, log, onWritten: (states) => timelines.offer(states) });
  // Every commit, whoever made it (this process, another, a worker writing straight into Redis).
  await timelines.watch(broker);
  const urgent = new UrgentStates({ persist: (state) => snapshotter.persistNow(state), log });
  // In Redis, other processes and languages publish too: their first and terminal states are written at once as well.
  if (source === 'redis') await urgent.watch(broker);
  const eta = new EtaRefresher({ load: () => database.deadline.run('reading the ETA history', recentCompletedRuns(database.db, DEFAULT_ETA_HISTORY_RUNS)), log });
  const tracker = new ProgressTracker({
    states: broker,
    recover: newest.stored,
    persistNow: (state) => urgent.persistNow(state),
    onCommit: (state) => timelines.offer([state]),
    estimate: learnedEstimate(eta),
  });
  const generatorMetrics = new GeneratorMetrics();
  const orchestrator = new Orchestrator({
    tracker,
    runs,
    generator: options.generator ?? createGenerator(config, generatorMetrics),
    onText: options.onText,
    texts,
    readState: newest.committed,
    log,
    owner,
    maxGenerations: config.maxGenerations,
    leaseMs: config.runLeaseMs,
    generatorRetries: config.generatorRetries,
  });
  const hub = new Hub(broker, newest.find, log);
  const streams = new StreamRegistry(config.heartbeatMs);
  const auth = new Authenticator({ ...config.auth, publishToken: config.publishToken });
  const expiries = new Expiries();
  const load = new LoadMonitor(config.overload);
  const cap = new ConnectionCap(config.maxSseConnections, new UserConnections(config.maxConnectionsPerUser), load);
  const websockets = new WebSocketEndpoint({ hub, texts, auth, expiries, log, cap, heartbeatMs: config.heartbeatMs, maxBooksPerConnection: config.maxBooksPerStream });
  cap.count(streams);
  cap.count(websockets);
  const metrics = createMetrics({
    hub,
    streams,
    broker,
    storeStats: store.stats,
    snapshotter,
    orchestrator,
    websocketConnections: () => websockets.size,
    faults: FaultLog.of(log),
  });
  registerGeneratorMetrics(metrics, generatorMetrics);
  timelines.onRecorded = registerTimelineMetrics(metrics);
  let draining = false;
  const readiness = new Readiness({
    broker: () => broker.get(READINESS_PROBE_BOOK),
    brokerLive: () => broker.isLive(),
    database: () => database.ping(),
    draining: () => draining,
    overloaded: () => load.overloaded,
  });
  const cors = new CorsPolicy(config.corsOrigins);
  const app = createApp({
    metrics,
    readiness,
    publishQuota: config.maxPublishesPerSecondPerTenant > 0 ? new TenantQuota(config.maxPublishesPerSecondPerTenant) : null,
    load,
    requestDeadlineMs: config.backendTimeoutMs,
    pages: cors,
    tracker,
    books,
    orchestrator,
    hub,
    newest,
    texts,
    streams,
    log,
    maxBodyBytes: config.maxBodyBytes,
    sseRetryMs: DEFAULT_SSE_RETRY_MS,
    cap,
    maxBooksPerStream: config.maxBooksPerStream,
    auth,
    expiries,
    basePath: config.basePath,
    frameAncestors: config.frameAncestors,
    staleAfterMs: config.staleAfterMs,
    timeline: (bookId) => database.deadline.run('reading a timeline', bookTimeline(database.db, bookId)),
    analytics: async (window) => {
      const [figures, completed] = await Promise.all([
        database.deadline.run('reading analytics', analytics(database.db, window)),
        database.deadline.run('reading completed runs', recentCompletedRuns(database.db, ANALYTICS_ETA_RUNS, window)),
      ]);
      return { ...figures, eta: etaAccuracy(eta.model, completed) };
    },
    adminStatus: adminStatus({ owner, startedAt: Date.now(), streams, websockets, hub, readiness, snapshotter, runs, orchestrator, faults: FaultLog.of(log) }),
    adoption: new BookAdoption(database.db, database.deadline),
  });
  const server = createEdge({
    fetch: app.fetch,
    websockets,
    cors,
    hub,
    source,
    auth,
    basePath: config.basePath,
    host: config.host,
    trustProxy: config.trustProxy,
    securityHeaders: await apiSecurityHeaderEntries(),
    headersTimeoutMs: config.headersTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    log,
  });

  /** Ends every connection and timer, runs `drain`, then closes the backends: for a failed listen and for close(). */
  const stopParts = async (drain: () => Promise<void> = async () => {}) => {
    streams.closeAll(DEFAULT_SSE_RETRY_MS);
    websockets.close();
    streams.stop();
    expiries.stop();
    hub.close();
    eta.stop();
    load.stop();
    await drain();
    await timelines.stop();
    await urgent.close();
    texts.close();
    await broker.close().catch((error: unknown) => log.warn({ err: (error as Error).message }, 'closing the broker failed'));
    await closeDatabase(database, log);
  };

  let port: number;
  try {
    port = await listen(server, config.port, config.host);
  } catch (error) {
    await stopParts();
    throw listenStartupError(error, config);
  }
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}${config.basePath}`;
  log.info({ url }, 'listening');
  log.info({ dashboard: `${url}/`, authentication: auth.enabled ? 'on' : 'off' }, `dashboard at ${url}/, authentication ${auth.enabled ? 'on' : 'off'}`);
  if (!auth.enabled) {
    log.warn(
      config.publishToken === null
        ? 'authentication is off: anyone who reaches this server reads every book and publishes; set AUTH_JWT_SECRET or AUTH_JWKS_URL'
        : 'authentication is off: anyone who reaches this server reads every book (PUBLISH_TOKEN guards writes); set AUTH_JWT_SECRET or AUTH_JWKS_URL',
    );
  }
  snapshotter.start();
  timelines.start();
  eta.start();
  orchestrator.begin();

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      draining = true;
      // Load balancers see /readyz at 503 and stop routing here while everything still serves.
      if (config.shutdownDrainMs > 0) await new Promise((resolve) => setTimeout(resolve, config.shutdownDrainMs));
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      await stopParts(async () => {
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
        await timelines.stop();
      });
    })());

  return { url, port, broker, texts, store, books, runs, snapshotter, orchestrator, tracker, hub, streams, timelines, eta, close };
}

/** Completed runs of a window the ETA's accuracy is scored on (the most recent). */
const ANALYTICS_ETA_RUNS = 500;

/** The book /readyz reads to see that the broker answers; no book has this id. */
const READINESS_PROBE_BOOK = '__readyz__';

/** How long requests in flight may take to finish at shutdown. */
const SHUTDOWN_GRACE_MS = 1_000;

/** How long start-up waits for Redis before serving anyway (with the database fallback). */
const REDIS_STARTUP_WAIT_MS = 5_000;

interface Backend {
  broker: Broker & DirtyClaims;
  texts: TextLog & { close(): void };
  source: 'redis' | 'memory';
}

async function createBroker(config: Config, log: Logger): Promise<Backend> {
  if (config.redisTarget === null) {
    const texts: MemoryTextLog = new MemoryTextLog({ ttlSeconds: config.progressTtlSeconds, maxSectionBytes: config.maxSectionTextBytes, fenceOf: (bookId) => broker.fenceOf(bookId) });
    const broker = new MemoryBroker({
      ttlSeconds: config.progressTtlSeconds,
      terminalTtlSeconds: config.terminalTtlSeconds,
      onFinished: (bookId, expiresAt) => texts.bookFinished(bookId, expiresAt),
    });
    return { broker, texts, source: 'memory' };
  }
  const broker = new RedisBroker({
    target: config.redisTarget,
    keyPrefix: config.redisKeyPrefix,
    ttlSeconds: config.progressTtlSeconds,
    terminalTtlSeconds: config.terminalTtlSeconds,
    log,
    timeoutMs: config.backendTimeoutMs,
    waitReplicas: config.redisWaitReplicas,
  });
  if (!(await broker.ready(REDIS_STARTUP_WAIT_MS))) log.warn('redis is not answering; serving from the database until it does');
  const texts = new RedisTextLog({ broker, keyPrefix: config.redisKeyPrefix, ttlSeconds: config.progressTtlSeconds, maxSectionBytes: config.maxSectionTextBytes, log });
  return { broker, texts, source: 'redis' };
}

async function closeDatabase(database: DatabaseHandle, log: Logger): Promise<void> {
  try {
    await database.close();
  } catch (error) {
    log.warn({ err: (error as Error).message }, 'closing the database failed');
  }
}
