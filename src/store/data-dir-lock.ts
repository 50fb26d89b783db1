import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
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

/**
 * The lock file `<dataDir>/booksai-progress.pid`, holding the pid of the process that has the
 * embedded database open. A file left by a process that died (kill -9, a crash) is taken over:
 * the pid it names no longer runs.
 */
export class DataDirLock {
  private constructor(readonly path: string) {}

  /** Takes the lock, or throws DataDirInUseError naming the live process that holds it. */
  static take(dataDir: string): DataDirLock {
    const path = join(dataDir, LOCK_FILE);
    for (;;) {
      try {
        const fd = openSync(path, 'wx');
        writeSync(fd, `${process.pid}\n`);
        closeSync(fd);
        return new DataDirLock(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = readHolder(path);
      if (holder !== null && holder !== process.pid && isRunning(holder)) throw new DataDirInUseError(dataDir, holder);
      // A stale file (its process is gone, or it was half-written): remove it and try again.
      rmSync(path, { force: true });
    }
  }

  release(): void {
    if (readHolder(this.path) === process.pid) rmSync(this.path, { force: true });
  }
}

function readHolder(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
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
