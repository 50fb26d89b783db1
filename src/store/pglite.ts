import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, rmdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { PGlite } from '@electric-sql/pglite';

/**
 * Postgres memory settings of the embedded database. Its WebAssembly memory only grows, so every
 * buffer Postgres touches once stays in the process's RSS: Postgres's defaults (shared_buffers
 * 128 MB, maintenance_work_mem 64 MB) would hold ~150 MB for a database of a few MB.
 */
const MEMORY_SETTINGS: Record<string, string> = {
  shared_buffers: '16MB',
  work_mem: '2MB',
  maintenance_work_mem: '8MB',
  temp_buffers: '2MB',
};

/** How long creating the database may take (initdb takes ~3-5 s on a loaded 2-core machine). */
const INIT_TIMEOUT_MS = 60_000;

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** The project root (for `--import tsx` when running from source): two levels up from src/store and dist/store. */
const ROOT = join(HERE, '..', '..');
/** An empty database as made by initdb, written by `npm run build` (src/store/pglite-template.ts). */
export const EMPTY_DATABASE_TARBALL = join(ROOT, 'dist', 'pglite-empty.tar.gz');

/**
 * Opens the embedded database in `folder`, creating it first when it does not exist yet. The
 * creation runs in a child process (see pglite-init.ts), into a sibling folder renamed into place once
 * complete, so a crash midway never leaves a half-made database behind.
 */
export async function openEmbeddedPostgres(folder: string): Promise<PGlite> {
  if (!existsSync(join(folder, 'PG_VERSION'))) await createDatabase(folder);
  // V8 would compile Postgres's 9 MB of WebAssembly a second time with TurboFan, for ~50 MB of
  // code and seconds of CPU at start; the baseline compiler's code is fast enough for the demo
  // database (no hot path reads it). Only WebAssembly compiled from now on is affected.
  setFlagsFromString('--liftoff-only');
  const startParams = [...PGlite.defaultStartParams];
  for (const [name, value] of Object.entries(MEMORY_SETTINGS)) startParams.push('-c', `${name}=${value}`);
  return PGlite.create(folder, { startParams });
}

async function createDatabase(folder: string): Promise<void> {
  mkdirSync(dirname(folder), { recursive: true });
  const staging = `${folder}.creating-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = join(HERE, fromSource ? 'pglite-init.ts' : 'pglite-init.js');
  const args = [...(fromSource ? ['--import', 'tsx'] : []), entry, staging];
  if (existsSync(EMPTY_DATABASE_TARBALL)) args.push(EMPTY_DATABASE_TARBALL);
  try {
    await run(process.execPath, args);
    if (existsSync(folder)) {
      if (readdirSync(folder).length > 0) throw new Error(`${folder} holds files but no database (no PG_VERSION)`);
      rmdirSync(folder);
    }
    renameSync(staging, folder);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), INIT_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`creating the embedded database failed (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n').at(-1) ?? ''}`));
    });
  });
}
