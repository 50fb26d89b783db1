/** The benchmark's own Postgres database: created per run, dropped at the end. */
import postgres from 'postgres';

export const POSTGRES_HOST = '127.0.0.1';
export const POSTGRES_PORT = 5432;
const ADMIN_URL = `postgres://postgres@${POSTGRES_HOST}:${POSTGRES_PORT}/postgres`;

function admin() {
  return postgres(ADMIN_URL, { max: 1, connect_timeout: 5, onnotice: () => {}, fetch_types: false });
}

export function databaseUrl(name: string, port = POSTGRES_PORT): string {
  return `postgres://postgres@${POSTGRES_HOST}:${port}/${name}`;
}

export async function createDatabase(name: string): Promise<void> {
  const sql = admin();
  try {
    await sql.unsafe(`CREATE DATABASE "${name}"`);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export async function dropDatabase(name: string): Promise<void> {
  const sql = admin();
  try {
    await sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Postgres' own counters for the books table (flushed when the writing sessions end). */
export interface TableStats {
  inserted: number;
  updated: number;
  seqScans: number;
  indexScans: number;
  liveRows: number;
}

export async function booksTableStats(name: string): Promise<TableStats> {
  const sql = postgres(databaseUrl(name), { max: 1, connect_timeout: 5, onnotice: () => {}, fetch_types: false });
  try {
    const rows = await sql<Array<Record<string, string | null>>>`
      select n_tup_ins, n_tup_upd, seq_scan, idx_scan, n_live_tup
      from pg_stat_user_tables where relname = 'books'`;
    const row = rows[0] ?? {};
    const n = (key: string) => Number(row[key] ?? 0);
    return { inserted: n('n_tup_ins'), updated: n('n_tup_upd'), seqScans: n('seq_scan'), indexScans: n('idx_scan'), liveRows: n('n_live_tup') };
  } finally {
    await sql.end({ timeout: 5 });
  }
}
