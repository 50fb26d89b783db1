import { linkSync, mkdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

/** A DATA_DIR another live process holds: its embedded database may be opened by one process only. */
export class DataDirInUseError extends Error {
  override readonly name = 'DataDirInUseError';
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(`${dataDir} is in use by another booksai-progress process (pid ${pid})`);
  }
}

const LOCK_FILE = 'booksai-progress.pid';
/** A takeover guard older than this was left by a process that died while holding it. */
const GUARD_STALE_MS = 10_000;
const ATTEMPTS = 1_000;

/**
 * The lock file `<dataDir>/booksai-progress.pid`, holding the pid of the process that has the
 * embedded database open. It appears whole or not at all (written aside, then hard-linked into
 * place, which fails if it exists). A file left by a process that died (kill -9, a crash) is
 * taken over, by one process at a time (under a `.takeover` directory), and only while it
 * still holds what was found stale. Pids are compared on this host: processes in other pid
 * namespaces (containers) sharing the folder are not told apart.
 */
export class DataDirLock {
  private constructor(readonly path: string) {}

  /** Takes the lock, or throws DataDirInUseError naming the live process that holds it. */
  static take(dataDir: string): DataDirLock {
    const path = join(dataDir, LOCK_FILE);
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (placeLockFile(path)) return new DataDirLock(path);
      const seen = readOrNull(path);
      if (seen === null) continue; // removed meanwhile: try again
      const holder = pidIn(seen);
      if (holder !== null && holder !== process.pid && isRunning(holder)) throw new DataDirInUseError(dataDir, holder);
      removeStale(path, seen);
    }
    throw new Error(`${path}: could not take the lock (it keeps changing hands)`);
  }

  release(): void {
    const held = readOrNull(this.path);
    if (held !== null && pidIn(held) === process.pid) rmSync(this.path, { force: true });
  }
}

/** Writes this process's pid aside and links it into place: true when it was free. */
function placeLockFile(path: string): boolean {
  const aside = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(aside, `${process.pid}\n`);
  try {
    linkSync(aside, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return false;
  } finally {
    rmSync(aside, { force: true });
  }
}

/** Removes the lock file if it still holds `seen`, one process at a time. */
function removeStale(path: string, seen: string): void {
  const guard = `${path}.takeover`;
  try {
    mkdirSync(guard);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const age = Date.now() - (statSync(guard, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
    if (age > GUARD_STALE_MS) rmSync(guard, { recursive: true, force: true });
    else pause(5);
    return;
  }
  try {
    if (readOrNull(path) === seen) rmSync(path, { force: true });
  } finally {
    rmdirSync(guard);
  }
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function pidIn(content: string): number | null {
  const pid = Number.parseInt(content, 10);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A short synchronous wait, while another process takes a stale lock over (take() is synchronous). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
