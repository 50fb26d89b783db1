import type { Config } from './config.js';
import { DataDirInUseError } from './store/data-dir-lock.js';
import { rootMessage } from './store/failures.js';

/**
 * Start-up stopped because of one setting: main.ts prints `SETTING: message` on one line and
 * exits 1, without a stack trace (the message says all an operator can act on).
 */
export class StartupError extends Error {
  override readonly name = 'StartupError';
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(message);
  }

  /** The line main.ts prints. */
  get line(): string {
    return `${this.setting}: ${this.message}`;
  }
}

/** Why the database could not be opened, naming DATABASE_URL (or DATA_DIR for the embedded one). */
export function databaseStartupError(error: unknown, config: Config): StartupError {
  if (error instanceof DataDirInUseError) return new StartupError('DATA_DIR', error.message);
  const reason = rootMessage(error) || (error as { code?: string }).code || 'unknown error';
  if (config.databaseUrl === null) return new StartupError('DATA_DIR', `cannot open the embedded database under ${config.dataDir}: ${reason}`);
  return new StartupError('DATABASE_URL', `cannot open ${redactUrl(config.databaseUrl)}: ${reason}`);
}

/** Why the server could not listen, naming PORT (in use, privileged) or HOST (no such address). */
export function listenStartupError(error: unknown, config: Config): StartupError {
  const code = (error as { code?: string }).code;
  const where = `${config.host}:${config.port}`;
  if (code === 'EADDRINUSE') return new StartupError('PORT', `${where} is already in use (another process listens there)`);
  if (code === 'EACCES') return new StartupError('PORT', `not allowed to listen on ${where} (ports below 1024 need privileges)`);
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new StartupError('HOST', `${config.host} is not an address of this machine`);
  return new StartupError('PORT', `cannot listen on ${where}: ${(error as Error).message}`);
}

/** The URL without its password, for logs and start-up errors. */
export function redactUrl(raw: string): string {
  const url = new URL(raw);
  if (url.password) url.password = '***';
  return url.toString();
}
