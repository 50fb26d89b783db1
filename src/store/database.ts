import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import postgres from 'postgres';
import { openEmbeddedPostgres } from './pglite.js';
import * as schema from './schema.js';

export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface DatabaseHandle {
  db: Database;
  kind: 'postgres' | 'pglite';
  close(): Promise<void>;
}

/** drizzle/ at the project root: two levels up from both src/store and dist/store. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../drizzle', import.meta.url));

const POOL_SIZE = 10;
const CONNECT_TIMEOUT_SECONDS = 5;

/**
 * fetch_types off: the schema has no array columns, and postgres.js runs that lookup on each new
 * connection as a promise nobody awaits, so a connection reset during it is an unhandled rejection.
 */
const CLIENT_OPTIONS = { connect_timeout: CONNECT_TIMEOUT_SECONDS, fetch_types: false, onnotice: () => {} } as const;

/**
 * Opens Postgres at `databaseUrl`, or the embedded PGlite under `dataDir` when it is null,
 * after applying pending migrations (on their own single connection for Postgres).
 */
export async function openDatabase(databaseUrl: string | null, dataDir: string): Promise<DatabaseHandle> {
  if (databaseUrl === null) return openPglite(dataDir);
  await migrateDatabase(databaseUrl);
  const client = postgres(databaseUrl, { ...CLIENT_OPTIONS, max: POOL_SIZE });
  return {
    db: drizzlePostgres(client, { schema }),
    kind: 'postgres',
    close: () => client.end({ timeout: 5 }),
  };
}

/** Applies pending migrations to Postgres over one connection, then closes it. */
export async function migrateDatabase(databaseUrl: string): Promise<void> {
  const client = postgres(databaseUrl, { ...CLIENT_OPTIONS, max: 1 });
  try {
    await migratePostgres(drizzlePostgres(client), { migrationsFolder: MIGRATIONS_FOLDER });
  } finally {
    await client.end({ timeout: 5 });
  }
}

async function openPglite(dataDir: string): Promise<DatabaseHandle> {
  const folder = join(dataDir, 'pglite');
  mkdirSync(folder, { recursive: true });
  const client = await openEmbeddedPostgres(folder);
  const db = drizzlePglite(client, { schema });
  await migratePglite(db, { migrationsFolder: MIGRATIONS_FOLDER });
  return { db, kind: 'pglite', close: () => client.close() };
}
