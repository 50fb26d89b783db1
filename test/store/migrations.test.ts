import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import postgres from 'postgres';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { startTestService } from '../support/service.js';
import { withTimeout } from '../support/wait.js';

const databases: TestDatabase[] = [];
const services: Service[] = [];
const folders: string[] = [];

afterEach(async () => {
  for (const service of services.splice(0)) await service.close();
});

afterAll(async () => {
  for (const database of databases.splice(0)) await database.drop();
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

async function freshDatabase(): Promise<TestDatabase> {
  const database = await createTestDatabase();
  databases.push(database);
  return database;
}

const TABLES_QUERY = `select table_name from information_schema.tables where table_schema = 'public' order by table_name`;

/** The public tables of the database at `url`, and the migrations its journal records (null: no journal). */
async function tablesOf(url: string): Promise<{ tables: string[]; migrations: number | null }> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const tables = (await sql.unsafe<Array<{ table_name: string }>>(TABLES_QUERY)).map((row) => row.table_name);
    const [journal] = await sql<Array<{ name: string | null }>>`select to_regclass('drizzle.__drizzle_migrations')::text as name`;
    if (!journal?.name) return { tables, migrations: null };
    const [count] = await sql<Array<{ count: number }>>`select count(*)::int as count from drizzle.__drizzle_migrations`;
    return { tables, migrations: count?.count ?? 0 };
  } finally {
    await sql.end();
  }
}

/** Runs the migrate CLI as `npm run db:migrate` does, and resolves with its exit code and output. */
async function runMigrateCli(env: Record<string, string | undefined>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/store/migrate-cli.ts'], {
    cwd: process.cwd(),
    env: { PATH: process.env.PATH, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await withTimeout(
    new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (exitCode) => resolve(exitCode));
    }),
    20_000,
    'the migrate CLI to exit',
  ).finally(() => child.kill('SIGKILL'));
  return { code, output };
}

describe('migrations', () => {
  it('are applied to a fresh Postgres database when a service starts, once', async () => {
    const database = await freshDatabase();
    expect(await tablesOf(database.url)).toEqual({ tables: [], migrations: null });

    services.push(await startTestService({ DATABASE_URL: database.url }));
    const first = await tablesOf(database.url);
    expect(first.tables).toEqual(expect.arrayContaining(['books', 'chapters']));
    expect(first.migrations).toBeGreaterThan(0);

    // A second process on the same database finds nothing left to apply.
    services.push(await startTestService({ DATABASE_URL: database.url }));
    expect(await tablesOf(database.url)).toEqual(first);
  });

  it('are applied to the embedded PGlite when no DATABASE_URL is set', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'booksai-pglite-'));
    folders.push(dataDir);
    const service = await startTestService({ DATABASE_URL: undefined, DATA_DIR: dataDir });
    services.push(service);
    // A book and its run in one transaction, then a chapter of that run, as the orchestrator writes them.
    const run = await service.runs.create({ id: 'pglite-book', title: 'Embedded' }, { chapters: 1, sectionsPerChapter: 1 }, { owner: 'test', leaseMs: 60_000 });
    expect(await service.runs.saveChapter('pglite-book', run.epoch, { number: 1, title: 'One', content: 'text' })).toBe('saved');
    await service.close();

    const pglite = new PGlite(join(dataDir, 'pglite'));
    try {
      const tables = (await pglite.query<{ table_name: string }>(TABLES_QUERY)).rows.map((row) => row.table_name);
      expect(tables).toEqual(expect.arrayContaining(['books', 'chapters']));
      const chapters = await pglite.query<{ book_id: string; title: string }>('select book_id, title from chapters');
      expect(chapters.rows).toEqual([{ book_id: 'pglite-book', title: 'One' }]);
    } finally {
      await pglite.close();
    }
  });

  it('npm run db:migrate applies them to a fresh database and exits 0', async () => {
    const database = await freshDatabase();
    expect(await tablesOf(database.url)).toEqual({ tables: [], migrations: null });
    const { code, output } = await runMigrateCli({ DATABASE_URL: database.url });
    expect(code, output).toBe(0);
    expect(output).toContain('migrations applied');
    const { tables, migrations } = await tablesOf(database.url);
    expect(tables).toEqual(expect.arrayContaining(['books', 'chapters']));
    expect(migrations).toBeGreaterThan(0);

    // Running it again is harmless.
    expect((await runMigrateCli({ DATABASE_URL: database.url })).code).toBe(0);
  });

  it('db:migrate without DATABASE_URL exits 1 with a message naming it', async () => {
    const { code, output } = await runMigrateCli({ DATABASE_URL: undefined });
    expect(code).toBe(1);
    expect(output).toContain('DATABASE_URL is required');
  });
});
