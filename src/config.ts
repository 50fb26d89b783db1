import { z } from 'zod';

export const DEFAULT_PORT = 3000;
export const DEFAULT_HOST = '0.0.0.0';
export const DEFAULT_REDIS_KEY_PREFIX = 'booksai:';
export const DEFAULT_PROGRESS_TTL_SECONDS = 86_400;
/** A finished book's (COMPLETE, ERROR) state stays in Redis this long; Postgres holds it at once. */
export const DEFAULT_TERMINAL_TTL_SECONDS = 3_600;
export const DEFAULT_DATA_DIR = './data';
export const DEFAULT_SNAPSHOT_INTERVAL_MS = 30_000;
export const DEFAULT_HEARTBEAT_MS = 15_000;
export const MAX_HEARTBEAT_MS = 25_000;
/** A running book without an update for this long is shown as stalled (STALE_AFTER_SECONDS). */
export const DEFAULT_STALE_AFTER_SECONDS = 120;
export const DEFAULT_DEMO_STEP_MS = 400;
/** About a chat model's streaming rate, so the demo's text arrives as a real one's does. */
export const DEFAULT_DEMO_TOKENS_PER_SECOND = 40;
export const DEFAULT_OPENAI_BASE_URL = 'https://api.openai.com/v1';
export const DEFAULT_OPENAI_MODEL = 'gpt-4o-mini';
/** The longest wait for the AI service's answer to start, and between two chunks of it. */
export const DEFAULT_OPENAI_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
/** The most live text one section holds in the broker: 256 KiB (a section is a few KiB). */
export const DEFAULT_MAX_SECTION_TEXT_BYTES = 256 * 1024;
/** A client has this long to send its request headers (slowloris), and REQUEST_TIMEOUT_MS for the whole request. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_SSE_RETRY_MS = 3_000;
export const DEFAULT_MAX_SSE_CONNECTIONS = 20_000;
export const DEFAULT_MAX_BOOKS_PER_STREAM = 100;
export const DEFAULT_MAX_CONNECTIONS_PER_USER = 50;
/** HS256 needs a key as long as its hash (RFC 7518 3.2). */
export const MIN_JWT_SECRET_BYTES = 32;
export const DEFAULT_RUN_LEASE_MS = 15_000;
export const DEFAULT_MAX_GENERATIONS = 4;
export const DEFAULT_GENERATOR_RETRIES = 5;
export const DEFAULT_BACKEND_TIMEOUT_MS = 2_000;
/** Past this event-loop delay (ms), or this share of the heap limit (%), new streams and publishes get 503 overloaded. */
export const DEFAULT_OVERLOAD_LOOP_DELAY_MS = 200;
export const DEFAULT_OVERLOAD_HEAP_PERCENT = 90;
/** How often a cluster client re-reads the slot map, so a migrated slot is noticed even without a MOVED. */
export const DEFAULT_CLUSTER_SLOTS_REFRESH_MS = 2_000;

const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const blankAsUndefined = (value: unknown) => (value === '' ? undefined : value);
const optionalString = z.preprocess(blankAsUndefined, z.string().optional());
const jwtSecret = z.preprocess(
  blankAsUndefined,
  z
    .string()
    .refine((secret) => Buffer.byteLength(secret) >= MIN_JWT_SECRET_BYTES, `must be at least ${MIN_JWT_SECRET_BYTES} bytes`)
    .optional(),
);

/** `host:port,host:port`: seed nodes of a cluster, or the Sentinels. */
const hostPortList = z
  .string()
  .transform((list) => list.split(',').map((entry) => entry.trim()).filter((entry) => entry !== ''))
  .pipe(
    z
      .array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'each entry must be host:port'))
      .min(1)
      .transform((entries) => entries.map((entry) => ({ host: entry.slice(0, entry.lastIndexOf(':')), port: Number(entry.slice(entry.lastIndexOf(':') + 1)) }))),
  );

const EnvSchema = z.object({
  PORT: z.preprocess(blankAsUndefined, integer(0, 65_535).default(DEFAULT_PORT)),
  HOST: z.preprocess(blankAsUndefined, z.string().default(DEFAULT_HOST)),
  REDIS_URL: z.preprocess(blankAsUndefined, z.url({ protocol: /^rediss?$/ }).optional()),
  REDIS_HOST: optionalString,
  REDIS_PORT: z.preprocess(blankAsUndefined, integer(1, 65_535).default(6379)),
  REDIS_PASSWORD: optionalString,
  REDIS_CLUSTER_NODES: z.preprocess(blankAsUndefined, hostPortList.optional()),
  REDIS_CLUSTER_PUBSUB: z.preprocess(blankAsUndefined, z.enum(['sharded', 'classic']).default('sharded')),
  REDIS_CLUSTER_SLOTS_REFRESH_MS: z.preprocess(blankAsUndefined, integer(100, 600_000).default(DEFAULT_CLUSTER_SLOTS_REFRESH_MS)),
  REDIS_SENTINELS: z.preprocess(blankAsUndefined, hostPortList.optional()),
  REDIS_SENTINEL_MASTER: optionalString,
  REDIS_TLS: z.preprocess(blankAsUndefined, z.enum(['true', 'false']).default('false')),
  REDIS_KEY_PREFIX: z.preprocess(
    blankAsUndefined,
    z
      .string()
      .max(64)
      .regex(/^[A-Za-z0-9:_.-]*$/, 'may hold only A-Z, a-z, 0-9, ":", "_", "." and "-"')
      .default(DEFAULT_REDIS_KEY_PREFIX),
  ),
  PROGRESS_TTL_SECONDS: z.preprocess(blankAsUndefined, integer(1, 30 * 86_400).default(DEFAULT_PROGRESS_TTL_SECONDS)),
  TERMINAL_TTL_SECONDS: z.preprocess(blankAsUndefined, integer(1, 30 * 86_400).default(DEFAULT_TERMINAL_TTL_SECONDS)),
  DATABASE_URL: z.preprocess(blankAsUndefined, z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  DATA_DIR: z.preprocess(blankAsUndefined, z.string().default(DEFAULT_DATA_DIR)),
  SNAPSHOT_INTERVAL_MS: z.preprocess(blankAsUndefined, integer(100, 3_600_000).default(DEFAULT_SNAPSHOT_INTERVAL_MS)),
  HEARTBEAT_MS: z.preprocess(blankAsUndefined, integer(100, MAX_HEARTBEAT_MS).default(DEFAULT_HEARTBEAT_MS)),
  STALE_AFTER_SECONDS: z.preprocess(blankAsUndefined, integer(1, 86_400).default(DEFAULT_STALE_AFTER_SECONDS)),
  SHUTDOWN_DRAIN_MS: z.preprocess(blankAsUndefined, integer(0, 600_000).default(0)),
  DEMO_STEP_MS: z.preprocess(blankAsUndefined, integer(0, 60_000).default(DEFAULT_DEMO_STEP_MS)),
  DEMO_FAILURE_RATE: z.preprocess(blankAsUndefined, z.coerce.number().min(0).max(1).default(0)),
  DEMO_TOKENS_PER_SECOND: z.preprocess(blankAsUndefined, integer(1, 1_000_000_000).default(DEFAULT_DEMO_TOKENS_PER_SECOND)),
  GENERATOR: z.preprocess(blankAsUndefined, z.enum(['demo', 'openai']).default('demo')),
  OPENAI_BASE_URL: z.preprocess(blankAsUndefined, z.url({ protocol: /^https?$/ }).default(DEFAULT_OPENAI_BASE_URL)),
  OPENAI_API_KEY: optionalString,
  OPENAI_MODEL: z.preprocess(blankAsUndefined, z.string().default(DEFAULT_OPENAI_MODEL)),
  OPENAI_TIMEOUT_MS: z.preprocess(blankAsUndefined, integer(100, 3_600_000).default(DEFAULT_OPENAI_TIMEOUT_MS)),
  RUN_LEASE_MS: z.preprocess(blankAsUndefined, integer(500, 3_600_000).default(DEFAULT_RUN_LEASE_MS)),
  MAX_GENERATIONS: z.preprocess(blankAsUndefined, integer(0, 10_000).default(DEFAULT_MAX_GENERATIONS)),
  GENERATOR_RETRIES: z.preprocess(blankAsUndefined, integer(0, 100).default(DEFAULT_GENERATOR_RETRIES)),
  MAX_BODY_BYTES: z.preprocess(blankAsUndefined, integer(1_024, 16 * 1024 * 1024).default(DEFAULT_MAX_BODY_BYTES)),
  MAX_SECTION_TEXT_BYTES: z.preprocess(blankAsUndefined, integer(1_024, 64 * 1024 * 1024).default(DEFAULT_MAX_SECTION_TEXT_BYTES)),
  MAX_PUBLISHES_PER_SECOND_PER_TENANT: z.preprocess(blankAsUndefined, integer(0, 10_000_000).default(0)),
  HEADERS_TIMEOUT_MS: z.preprocess(blankAsUndefined, integer(100, 600_000).default(DEFAULT_HEADERS_TIMEOUT_MS)),
  REQUEST_TIMEOUT_MS: z.preprocess(blankAsUndefined, integer(100, 3_600_000).default(DEFAULT_REQUEST_TIMEOUT_MS)),
  MAX_SSE_CONNECTIONS: z.preprocess(blankAsUndefined, integer(1, 1_000_000).default(DEFAULT_MAX_SSE_CONNECTIONS)),
  MAX_BOOKS_PER_STREAM: z.preprocess(blankAsUndefined, integer(1, 10_000).default(DEFAULT_MAX_BOOKS_PER_STREAM)),
  BACKEND_TIMEOUT_MS: z.preprocess(blankAsUndefined, integer(100, 60_000).default(DEFAULT_BACKEND_TIMEOUT_MS)),
  OVERLOAD_LOOP_DELAY_MS: z.preprocess(blankAsUndefined, integer(0, 60_000).default(DEFAULT_OVERLOAD_LOOP_DELAY_MS)),
  OVERLOAD_HEAP_PERCENT: z.preprocess(blankAsUndefined, integer(0, 100).default(DEFAULT_OVERLOAD_HEAP_PERCENT)),
  REDIS_WAIT_REPLICAS: z.preprocess(blankAsUndefined, integer(0, 100).default(0)),
  PUBLISH_TOKEN: z.preprocess(blankAsUndefined, z.string().min(16, 'must be at least 16 characters').optional()),
  AUTH_JWT_SECRET: jwtSecret,
  AUTH_JWT_PREVIOUS_SECRET: jwtSecret,
  AUTH_JWKS_URL: z.preprocess(blankAsUndefined, z.url({ protocol: /^https?$/ }).optional()),
  AUTH_ISSUER: optionalString,
  AUTH_AUDIENCE: optionalString,
  AUTH_MODE: z.preprocess(blankAsUndefined, z.enum(['open', 'jwt']).optional()),
  NODE_ENV: optionalString,
  MAX_CONNECTIONS_PER_USER: z.preprocess(blankAsUndefined, integer(1, 1_000_000).default(DEFAULT_MAX_CONNECTIONS_PER_USER)),
  LOG_LEVEL: z.preprocess(
    blankAsUndefined,
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
  CORS_ORIGINS: z.preprocess(blankAsUndefined, z.string().optional().transform(parseOrigins)),
  FRAME_ANCESTORS: z.preprocess(blankAsUndefined, z.string().optional().transform(parseFrameAncestors)),
  TRUST_PROXY: z.preprocess(blankAsUndefined, z.enum(['true', 'false', '1', '0']).default('false').transform((v) => v === 'true' || v === '1')),
  BASE_PATH: z.preprocess(
    blankAsUndefined,
    z
      .string()
      .regex(/^(\/(?!\.{1,2}(?:\/|$))[A-Za-z0-9._~-]+)+$/, 'must be a path like /progress: segments of A-Z a-z 0-9 . _ ~ -, no "." or ".." segment, no trailing slash')
      .optional(),
  ),
});

export interface Config {
  readonly port: number;
  readonly host: string;
  /** Null: the embedded in-memory broker, or Redis Cluster / Sentinel (see redisTarget). */
  readonly redisUrl: string | null;
  /** Which Redis: one node (redisUrl), a cluster or Sentinel; null: the in-memory broker. */
  readonly redisTarget: RedisTarget | null;
  readonly redisKeyPrefix: string;
  readonly progressTtlSeconds: number;
  /** TTL of a finished book's state (and its live text) in Redis; never longer than a running one's. */
  readonly terminalTtlSeconds: number;
  /** Null: the embedded PGlite database under dataDir. */
  readonly databaseUrl: string | null;
  readonly dataDir: string;
  readonly snapshotIntervalMs: number;
  readonly heartbeatMs: number;
  /** STALE_AFTER_SECONDS in ms: a book not terminal and silent this long is stalled. */
  readonly staleAfterMs: number;
  /** How long a stopping process keeps serving, with /readyz at 503, before it ends streams. */
  readonly shutdownDrainMs: number;
  readonly demoStepMs: number;
  /** Share of demo generator calls that fail (0-1). */
  readonly demoFailureRate: number;
  /** How fast the demo generator writes (about 4 characters a token). */
  readonly demoTokensPerSecond: number;
  /** Where book content comes from: the demo generator, or an OpenAI-compatible chat-completions API. */
  readonly generator: GeneratorSettings;
  /** How long a run's lease lasts without renewal before another process resumes it. */
  readonly runLeaseMs: number;
  /** Books generated at once by this process; 0: it only queues them. */
  readonly maxGenerations: number;
  /** Retries of a failed generator call before the book is marked ERROR. */
  readonly generatorRetries: number;
  readonly maxBodyBytes: number;
  /** MAX_SECTION_TEXT_BYTES: an append past it is refused (413 text_too_large). */
  readonly maxSectionTextBytes: number;
  /** Publishes a tenant may make per second in this process (bursts of twice that); 0: no limit. */
  readonly maxPublishesPerSecondPerTenant: number;
  /** How long a client may take to send its headers, and its whole request (headers and body); open streams are not bounded by either. */
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxSseConnections: number;
  readonly maxBooksPerStream: number;
  /** The longest any one Redis or Postgres call may take before it counts as an outage. */
  readonly backendTimeoutMs: number;
  /** OVERLOAD_LOOP_DELAY_MS and OVERLOAD_HEAP_PERCENT; 0 turns that signal off. */
  readonly overload: { readonly loopDelayMs: number; readonly heapPercent: number };
  /** REDIS_WAIT_REPLICAS: replicas that acknowledge a commit (WAIT) before a publish is answered; 0: none. */
  readonly redisWaitReplicas: number;
  /** Null: publishing is open to whoever reaches the server (in open mode). */
  readonly publishToken: string | null;
  readonly auth: {
    /** False: open mode, no token needed to read or (without PUBLISH_TOKEN) to write. */
    readonly enabled: boolean;
    /** HS256 secrets, current first, then the previous one (rotation). */
    readonly secrets: readonly string[];
    readonly jwksUrl: string | null;
    readonly issuer: string | null;
    readonly audience: string | null;
  };
  /** Open SSE streams and WebSockets per user (`sub`) per process, with authentication on. */
  readonly maxConnectionsPerUser: number;
  readonly logLevel: string;
  /** Exact origins (`https://app.example.com`) whose pages may read the API; empty: no CORS headers at all. */
  readonly corsOrigins: readonly string[];
  /** Who may frame the dashboard's pages (CSP frame-ancestors): 'self' by default. */
  readonly frameAncestors: readonly string[];
  /** Whether the client address in logs comes from X-Forwarded-For (one trusted proxy in front). */
  readonly trustProxy: boolean;
  /** The path every route lives under (`/progress`); '' for the root. */
  readonly basePath: string;
}

/** Reads the configuration once from `env`; throws one message naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`invalid configuration: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  const auth = authSettings(e);
  const redisUrl = e.REDIS_URL ?? redisUrlFromParts(e.REDIS_HOST, e.REDIS_PORT, e.REDIS_PASSWORD);
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    redisUrl,
    redisTarget: redisTarget(e, redisUrl),
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    progressTtlSeconds: e.PROGRESS_TTL_SECONDS,
    terminalTtlSeconds: Math.min(e.TERMINAL_TTL_SECONDS, e.PROGRESS_TTL_SECONDS),
    databaseUrl: e.DATABASE_URL ?? null,
    dataDir: e.DATA_DIR,
    snapshotIntervalMs: e.SNAPSHOT_INTERVAL_MS,
    heartbeatMs: e.HEARTBEAT_MS,
    staleAfterMs: e.STALE_AFTER_SECONDS * 1000,
    shutdownDrainMs: e.SHUTDOWN_DRAIN_MS,
    demoStepMs: e.DEMO_STEP_MS,
    demoFailureRate: e.DEMO_FAILURE_RATE,
    demoTokensPerSecond: e.DEMO_TOKENS_PER_SECOND,
    generator: generatorSettings(e),
    runLeaseMs: e.RUN_LEASE_MS,
    maxGenerations: e.MAX_GENERATIONS,
    generatorRetries: e.GENERATOR_RETRIES,
    maxBodyBytes: e.MAX_BODY_BYTES,
    maxSectionTextBytes: e.MAX_SECTION_TEXT_BYTES,
    maxPublishesPerSecondPerTenant: e.MAX_PUBLISHES_PER_SECOND_PER_TENANT,
    headersTimeoutMs: e.HEADERS_TIMEOUT_MS,
    requestTimeoutMs: Math.max(e.REQUEST_TIMEOUT_MS, e.HEADERS_TIMEOUT_MS),
    maxSseConnections: e.MAX_SSE_CONNECTIONS,
    maxBooksPerStream: e.MAX_BOOKS_PER_STREAM,
    backendTimeoutMs: e.BACKEND_TIMEOUT_MS,
    overload: { loopDelayMs: e.OVERLOAD_LOOP_DELAY_MS, heapPercent: e.OVERLOAD_HEAP_PERCENT },
    redisWaitReplicas: e.REDIS_WAIT_REPLICAS,
    publishToken: e.PUBLISH_TOKEN ?? null,
    auth,
    maxConnectionsPerUser: e.MAX_CONNECTIONS_PER_USER,
    logLevel: e.LOG_LEVEL,
    corsOrigins: e.CORS_ORIGINS,
    frameAncestors: e.FRAME_ANCESTORS,
    trustProxy: e.TRUST_PROXY,
    basePath: e.BASE_PATH ?? '',
  });
}

/**
 * Authentication is on when a secret or a JWK Set is configured. Production never runs open by
 * accident: NODE_ENV=production without either needs AUTH_MODE=open, said explicitly.
 */
function authSettings(e: z.infer<typeof EnvSchema>): Config['auth'] {
  const keyed = e.AUTH_JWT_SECRET !== undefined || e.AUTH_JWKS_URL !== undefined;
  const fail = (message: string): never => {
    throw new Error(`invalid configuration: ${message}`);
  };
  if (e.AUTH_JWT_PREVIOUS_SECRET !== undefined && e.AUTH_JWT_SECRET === undefined) {
    fail('AUTH_JWT_PREVIOUS_SECRET: needs AUTH_JWT_SECRET (the current secret) too');
  }
  if (e.AUTH_MODE === 'open' && keyed) fail('AUTH_MODE: "open" contradicts AUTH_JWT_SECRET / AUTH_JWKS_URL; unset one');
  if (e.AUTH_MODE === 'jwt' && !keyed) fail('AUTH_MODE: "jwt" needs AUTH_JWT_SECRET or AUTH_JWKS_URL');
  if (!keyed && e.NODE_ENV === 'production' && e.AUTH_MODE !== 'open') {
    fail('NODE_ENV=production needs authentication: set AUTH_JWT_SECRET or AUTH_JWKS_URL (or AUTH_MODE=open to run open on purpose)');
  }
  return Object.freeze({
    enabled: keyed,
    secrets: Object.freeze([e.AUTH_JWT_SECRET, e.AUTH_JWT_PREVIOUS_SECRET].filter((s): s is string => s !== undefined)),
    jwksUrl: e.AUTH_JWKS_URL ?? null,
    issuer: e.AUTH_ISSUER ?? null,
    audience: e.AUTH_AUDIENCE ?? null,
  });
}

export type GeneratorSettings =
  | { readonly kind: 'demo' }
  | {
      readonly kind: 'openai';
      readonly baseUrl: string;
      readonly apiKey: string;
      readonly model: string;
      readonly timeoutMs: number;
    };

function generatorSettings(e: z.infer<typeof EnvSchema>): GeneratorSettings {
  if (e.GENERATOR === 'demo') return Object.freeze({ kind: 'demo' });
  if (e.OPENAI_API_KEY === undefined) {
    throw new Error('invalid configuration: GENERATOR=openai needs OPENAI_API_KEY (a local server that checks none accepts any value, such as "none")');
  }
  return Object.freeze({ kind: 'openai', baseUrl: e.OPENAI_BASE_URL, apiKey: e.OPENAI_API_KEY, model: e.OPENAI_MODEL, timeoutMs: e.OPENAI_TIMEOUT_MS });
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** One Redis (REDIS_URL), a Redis Cluster (REDIS_CLUSTER_NODES) or a Sentinel-managed master (REDIS_SENTINELS). */
export type RedisTarget =
  | { readonly kind: 'single'; readonly url: string }
  | {
      readonly kind: 'cluster';
      readonly nodes: readonly HostPort[];
      /** 'classic': PUBLISH/SUBSCRIBE, for managed clusters without sharded pub/sub. */
      readonly pubsub: 'sharded' | 'classic';
      readonly password: string | null;
      readonly tls: boolean;
      /** How often the slot map is read again (REDIS_CLUSTER_SLOTS_REFRESH_MS). */
      readonly slotsRefreshMs: number;
    }
  | { readonly kind: 'sentinel'; readonly sentinels: readonly HostPort[]; readonly masterName: string; readonly password: string | null; readonly tls: boolean };

/** Exactly one of the three modes; two at once is refused rather than guessed between. */
function redisTarget(e: z.infer<typeof EnvSchema>, url: string | null): RedisTarget | null {
  const chosen = [url !== null && 'REDIS_URL (or REDIS_HOST)', e.REDIS_CLUSTER_NODES && 'REDIS_CLUSTER_NODES', e.REDIS_SENTINELS && 'REDIS_SENTINELS'].filter(Boolean);
  if (chosen.length > 1) throw new Error(`invalid configuration: ${chosen.join(' and ')} are both set; set exactly one Redis mode`);
  if (e.REDIS_SENTINEL_MASTER !== undefined && !e.REDIS_SENTINELS) throw new Error('invalid configuration: REDIS_SENTINEL_MASTER needs REDIS_SENTINELS');
  const password = e.REDIS_PASSWORD ?? null;
  const tls = e.REDIS_TLS === 'true';
  if (e.REDIS_CLUSTER_NODES) return Object.freeze({ kind: 'cluster', nodes: e.REDIS_CLUSTER_NODES, pubsub: e.REDIS_CLUSTER_PUBSUB, password, tls, slotsRefreshMs: e.REDIS_CLUSTER_SLOTS_REFRESH_MS });
  if (e.REDIS_SENTINELS) {
    if (e.REDIS_SENTINEL_MASTER === undefined) throw new Error('invalid configuration: REDIS_SENTINELS needs REDIS_SENTINEL_MASTER (the master name the Sentinels monitor)');
    return Object.freeze({ kind: 'sentinel', sentinels: e.REDIS_SENTINELS, masterName: e.REDIS_SENTINEL_MASTER, password, tls });
  }
  return url === null ? null : Object.freeze({ kind: 'single', url });
}

/** CORS_ORIGINS: comma-separated origins, each exactly `scheme://host[:port]` as a browser sends it. */
function parseOrigins(raw: string | undefined, ctx: z.RefinementCtx): string[] {
  if (raw === undefined) return [];
  const origins = raw.split(',').map((o) => o.trim()).filter((o) => o !== '');
  for (const origin of origins) {
    let parsed: URL | null = null;
    try {
      parsed = new URL(origin);
    } catch {
      // reported below
    }
    if (parsed === null || !/^https?:$/.test(parsed.protocol) || parsed.origin !== origin) {
      ctx.addIssue({ code: 'custom', message: `"${origin}" is not an origin like https://app.example.com (scheme, host, optional port; no path or trailing slash)` });
    }
  }
  return Object.freeze(origins) as string[];
}

/** FRAME_ANCESTORS: comma-separated origins, or `self` / `none`; unset: the dashboard's own origin only. */
function parseFrameAncestors(raw: string | undefined, ctx: z.RefinementCtx): string[] {
  if (raw === undefined) return ["'self'"];
  const keywords = new Map([['self', "'self'"], ["'self'", "'self'"], ['none', "'none'"], ["'none'", "'none'"]]);
  const entries = raw.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  const sources = entries.filter((entry) => !keywords.has(entry));
  const origins = parseOrigins(sources.join(','), ctx);
  const named = entries.filter((entry) => keywords.has(entry)).map((entry) => keywords.get(entry) as string);
  if (named.includes("'none'") && entries.length > 1) ctx.addIssue({ code: 'custom', message: '"none" cannot go with other sources' });
  return Object.freeze([...new Set(named), ...origins]) as string[];
}

/** The URL REDIS_HOST / REDIS_PORT / REDIS_PASSWORD name, used when REDIS_URL is not set. */
function redisUrlFromParts(host: string | undefined, port: number, password: string | undefined): string | null {
  if (host === undefined) return null;
  const url = new URL('redis://');
  url.hostname = host;
  url.port = String(port);
  if (password !== undefined) url.password = password;
  return url.toString();
}

/** What the command line (src/cli) needs to reach a server: its own small part of the environment. */
export interface ClientConfig {
  /** The server's base URL, base path included: BOOKSAI_URL, else this host's PORT and BASE_PATH. */
  readonly url: string;
  /** BOOKSAI_TOKEN: the bearer token the CLI sends; null for none (open mode). */
  readonly token: string | null;
}

const ClientEnvSchema = z.object({
  BOOKSAI_URL: z.preprocess(blankAsUndefined, z.url({ protocol: /^https?$/ }).optional()),
  BOOKSAI_TOKEN: optionalString,
  PORT: EnvSchema.shape.PORT,
  BASE_PATH: EnvSchema.shape.BASE_PATH,
});

/**
 * The CLI's settings, read apart from loadConfig so that `watch` or `publish` works from a shell
 * whose server variables are unset or meant for another host. Throws one message naming every bad variable.
 */
export function loadClientConfig(env: Record<string, string | undefined>): ClientConfig {
  const parsed = ClientEnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`invalid configuration: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  const port = e.PORT === 0 ? DEFAULT_PORT : e.PORT;
  return Object.freeze({
    url: (e.BOOKSAI_URL ?? `http://127.0.0.1:${port}${e.BASE_PATH ?? ''}`).replace(/\/+$/, ''),
    token: e.BOOKSAI_TOKEN ?? null,
  });
}
