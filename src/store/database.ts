import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { setTimeout as delay } from 'node:timers/promises';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { DataDirLock } from './data-dir-lock.js';
import { isDatabaseUnavailable } from './failures.js';
import { openEmbeddedPostgres } from './pglite.js';
import { DatabaseDeadline } from './deadline.js';
import * as schema from './schema.js';
import { SocketWatchdog } from './watchdog.js';

export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface DatabaseHandle {
  db: Database;
  kind: 'postgres' | 'pglite';
  /** Bounds every call of the stores built on `db` (BACKEND_TIMEOUT_MS). */
  deadline: DatabaseDeadline;
  /** Resolves when the database answered a statement within the deadline. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** drizzle/ at the project root: two levels up from both src/store and dist/store. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../drizzle', import.meta.url));

const POOL_SIZE = 10;
/** TCP keepalive, seconds: finds a server that vanished for good (an idle connection has nothing else to notice it). */
const KEEPALIVE_SECONDS = 10;
/** Idle pooled connections are closed after this many seconds, so none sits broken for long unnoticed. */
const IDLE_TIMEOUT_SECONDS = 60;
/** Migrations may take long; only connecting is bounded for them. */
const MIGRATION_CONNECT_TIMEOUT_SECONDS = 10;

/**
 * fetch_types off: the schema has no array columns, and postgres.js runs that lookup on each new
 * connection as a promise nobody awaits, so a connection reset during it is an unhandled rejection.
 */
const CLIENT_OPTIONS = { fetch_types: false, onnotice: () => {}, keep_alive: KEEPALIVE_SECONDS } as const;

/**
 * Opens Postgres at `databaseUrl`, or the embedded PGlite under `dataDir` when it is null,
 * after applying pending migrations (on their own single connection for Postgres).
 *
 * No call waits longer than `timeoutMs`: connecting (connect_timeout), each statement
 * (statement_timeout, which also ends lock waits; and the client-side `deadline` for what the
 * server's answer cannot bound: a network that drops it, a pool with no free connection), and a
 * connection that stops answering is closed, to be replaced (SocketWatchdog).
 */
export async function openDatabase(databaseUrl: string | null, dataDir: string, timeoutMs: number): Promise<DatabaseHandle> {
  if (databaseUrl === null) return openPglite(dataDir, new DatabaseDeadline(timeoutMs));
  await migrateDatabase(databaseUrl);
  // Longer than statement_timeout: a live server answers every statement (if only with its timeout) before.
  const watchdog = new SocketWatchdog(Math.round(timeoutMs * 1.5));
  const deadline = new DatabaseDeadline(timeoutMs, () => watchdog.missed());
  const client = postgres(databaseUrl, {
    ...CLIENT_OPTIONS,
    max: POOL_SIZE,
    connect_timeout: timeoutMs / 1000,
    idle_timeout: IDLE_TIMEOUT_SECONDS,
    connection: { statement_timeout: timeoutMs },
    // Documented in postgres.js's README ("Custom socket"), missing from its types.
    ...({ socket: watchdog.socket } as object),
  });
  const db = drizzlePostgres(client, { schema });
  return {
    db,
    kind: 'postgres',
    deadline,
    ping: () => pingWith(db, deadline),
    close: async () => {
      watchdog.close();
      await client.end({ timeout: Math.ceil(timeoutMs / 1000) });
    },
  };
}

/**
 * How long start-up keeps trying a Postgres that is there but failing (connections reset or
 * timing out: a restart, a proxy, a network cut). Nothing listening (ECONNREFUSED), a wrong
 * password or database fails at once: those are settings to fix, not outages to wait out.
 */
export const STARTUP_RETRY_MS = 30_000;
const STARTUP_RETRY_PAUSE_MS = 1_000;

/** An outage worth waiting out at start-up: unavailable, but something answers at that address. */
function worthRetrying(error: unknown): boolean {
  if (!isDatabaseUnavailable(error)) return false;
  for (let e: unknown = error; e instanceof Error; e = e.cause) if ((e as { code?: unknown }).code === 'ECONNREFUSED') return false;
  return true;
}

/**
 * Applies pending migrations over one connection, then closes it; a reset or a timeout is tried
 * again for up to `retryMs` (a server restarted during a Postgres outage starts once it heals).
 */
export async function migrateDatabase(databaseUrl: string, retryMs = STARTUP_RETRY_MS): Promise<void> {
  const started = performance.now();
  for (;;) {
    try {
      return await migrateOnce(databaseUrl);
    } catch (error) {
      if (!worthRetrying(error) || performance.now() - started + STARTUP_RETRY_PAUSE_MS > retryMs) throw error;
      await delay(STARTUP_RETRY_PAUSE_MS);
    }
  }
}

async function migrateOnce(databaseUrl: string): Promise<void> {
  const client = postgres(databaseUrl, { ...CLIENT_OPTIONS, max: 1, connect_timeout: MIGRATION_CONNECT_TIMEOUT_SECONDS });
  try {
    await migratePostgres(drizzlePostgres(client), { migrationsFolder: MIGRATIONS_FOLDER });
  } finally {
    await client.end({ timeout: 5 });
  }
}

/** Before anything is read: a second process on the same DATA_DIR stops here, naming the first. */
async function openPglite(dataDir: string, deadline: DatabaseDeadline): Promise<DatabaseHandle> {
  const folder = join(dataDir, 'pglite');
  mkdirSync(folder, { recursive: true });
  const lock = DataDirLock.take(dataDir);
  try {
    const client = await openEmbeddedPostgres(folder);
    const db = drizzlePglite(client, { schema });
    await migratePglite(db, { migrationsFolder: MIGRATIONS_FOLDER });
    return {
      db,
      kind: 'pglite',
      deadline,
      ping: () => pingWith(db, deadline),
      close: async () => {
        try {
          await client.close();
        } finally {
          lock.release();
        }
      },
    };
  } catch (error) {
    lock.release();
    throw error;
  }
}

async function pingWith(db: Database, deadline: DatabaseDeadline): Promise<void> {
  await deadline.run('a ping', db.execute(sql`select 1`));
}
