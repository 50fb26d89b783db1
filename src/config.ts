import { z } from 'zod';

export const DEFAULT_PORT = 3000;
export const DEFAULT_HOST = '0.0.0.0';
export const DEFAULT_REDIS_KEY_PREFIX = 'booksai:';
export const DEFAULT_PROGRESS_TTL_SECONDS = 86_400;
export const DEFAULT_DATA_DIR = './data';
export const DEFAULT_SNAPSHOT_INTERVAL_MS = 30_000;
export const DEFAULT_HEARTBEAT_MS = 15_000;
export const MAX_HEARTBEAT_MS = 25_000;
export const DEFAULT_DEMO_STEP_MS = 400;
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
export const DEFAULT_SSE_RETRY_MS = 3_000;
export const DEFAULT_MAX_SSE_CONNECTIONS = 20_000;
export const DEFAULT_MAX_BOOKS_PER_STREAM = 100;
export const DEFAULT_BACKEND_TIMEOUT_MS = 2_000;

const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const blankAsUndefined = (value: unknown) => (value === '' ? undefined : value);
const optionalString = z.preprocess(blankAsUndefined, z.string().optional());

const EnvSchema = z.object({
  PORT: z.preprocess(blankAsUndefined, integer(0, 65_535).default(DEFAULT_PORT)),
  HOST: z.preprocess(blankAsUndefined, z.string().default(DEFAULT_HOST)),
  REDIS_URL: z.preprocess(blankAsUndefined, z.url({ protocol: /^rediss?$/ }).optional()),
  REDIS_HOST: optionalString,
  REDIS_PORT: z.preprocess(blankAsUndefined, integer(1, 65_535).default(6379)),
  REDIS_PASSWORD: optionalString,
  REDIS_KEY_PREFIX: z.preprocess(
    blankAsUndefined,
    z
      .string()
      .max(64)
      .regex(/^[A-Za-z0-9:_.-]*$/, 'may hold only A-Z, a-z, 0-9, ":", "_", "." and "-"')
      .default(DEFAULT_REDIS_KEY_PREFIX),
  ),
  PROGRESS_TTL_SECONDS: z.preprocess(blankAsUndefined, integer(1, 30 * 86_400).default(DEFAULT_PROGRESS_TTL_SECONDS)),
  DATABASE_URL: z.preprocess(blankAsUndefined, z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  DATA_DIR: z.preprocess(blankAsUndefined, z.string().default(DEFAULT_DATA_DIR)),
  SNAPSHOT_INTERVAL_MS: z.preprocess(blankAsUndefined, integer(100, 3_600_000).default(DEFAULT_SNAPSHOT_INTERVAL_MS)),
  HEARTBEAT_MS: z.preprocess(blankAsUndefined, integer(100, MAX_HEARTBEAT_MS).default(DEFAULT_HEARTBEAT_MS)),
  DEMO_STEP_MS: z.preprocess(blankAsUndefined, integer(0, 60_000).default(DEFAULT_DEMO_STEP_MS)),
  MAX_BODY_BYTES: z.preprocess(blankAsUndefined, integer(1_024, 16 * 1024 * 1024).default(DEFAULT_MAX_BODY_BYTES)),
  MAX_SSE_CONNECTIONS: z.preprocess(blankAsUndefined, integer(1, 1_000_000).default(DEFAULT_MAX_SSE_CONNECTIONS)),
  MAX_BOOKS_PER_STREAM: z.preprocess(blankAsUndefined, integer(1, 10_000).default(DEFAULT_MAX_BOOKS_PER_STREAM)),
  BACKEND_TIMEOUT_MS: z.preprocess(blankAsUndefined, integer(100, 60_000).default(DEFAULT_BACKEND_TIMEOUT_MS)),
  PUBLISH_TOKEN: z.preprocess(blankAsUndefined, z.string().min(16, 'must be at least 16 characters').optional()),
  LOG_LEVEL: z.preprocess(
    blankAsUndefined,
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
});

export interface Config {
  readonly port: number;
  readonly host: string;
  /** Null: the embedded in-memory broker. */
  readonly redisUrl: string | null;
  readonly redisKeyPrefix: string;
  readonly progressTtlSeconds: number;
  /** Null: the embedded PGlite database under dataDir. */
  readonly databaseUrl: string | null;
  readonly dataDir: string;
  readonly snapshotIntervalMs: number;
  readonly heartbeatMs: number;
  readonly demoStepMs: number;
  readonly maxBodyBytes: number;
  readonly maxSseConnections: number;
  readonly maxBooksPerStream: number;
  /** The longest any one Redis or Postgres call may take before it counts as an outage. */
  readonly backendTimeoutMs: number;
  /** Null: publishing is open to whoever reaches the server. */
  readonly publishToken: string | null;
  readonly logLevel: string;
}

/** Reads the configuration once from `env`; throws one message naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new Error(`invalid configuration: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    redisUrl: e.REDIS_URL ?? redisUrlFromParts(e.REDIS_HOST, e.REDIS_PORT, e.REDIS_PASSWORD),
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    progressTtlSeconds: e.PROGRESS_TTL_SECONDS,
    databaseUrl: e.DATABASE_URL ?? null,
    dataDir: e.DATA_DIR,
    snapshotIntervalMs: e.SNAPSHOT_INTERVAL_MS,
    heartbeatMs: e.HEARTBEAT_MS,
    demoStepMs: e.DEMO_STEP_MS,
    maxBodyBytes: e.MAX_BODY_BYTES,
    maxSseConnections: e.MAX_SSE_CONNECTIONS,
    maxBooksPerStream: e.MAX_BOOKS_PER_STREAM,
    backendTimeoutMs: e.BACKEND_TIMEOUT_MS,
    publishToken: e.PUBLISH_TOKEN ?? null,
    logLevel: e.LOG_LEVEL,
  });
}

/** The seed's REDIS_HOST / REDIS_PORT / REDIS_PASSWORD, when REDIS_URL is not set. */
function redisUrlFromParts(host: string | undefined, port: number, password: string | undefined): string | null {
  if (host === undefined) return null;
  const url = new URL('redis://');
  url.hostname = host;
  url.port = String(port);
  if (password !== undefined) url.password = password;
  return url.toString();
}
