import { pino } from 'pino';
import { PinoPretty } from 'pino-pretty';
import { loadConfig } from './config.js';
import type { Config } from './config.js';
import { startService } from './service.js';
import type { Service } from './service.js';
import { StartupError } from './startup.js';

/** Exit within this long after SHUTDOWN_DRAIN_MS on SIGTERM/SIGINT, even if a backend hangs. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

let config: Config;
try {
  config = loadConfig(process.env);
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}

// A person at a terminal reads lines; anything else (a log collector, a pipe) gets JSON lines.
const readable = process.stdout.isTTY === true && process.env.NODE_ENV !== 'production';
const options = { level: config.logLevel, base: { service: 'booksai-progress' } };
const log = readable ? pino(options, PinoPretty({ colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,service' })) : pino(options);
let service: Service;
try {
  service = await startService(config, log);
} catch (error) {
  // One line naming the setting to fix; a stack trace would say nothing more to an operator.
  const line = error instanceof StartupError ? error.line : `start-up failed: ${(error as Error).message}`;
  process.stderr.write(`${line}\n`);
  process.exit(1);
}

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  const timer = setTimeout(() => {
    log.error('shutdown timed out');
    process.exit(1);
  }, config.shutdownDrainMs + SHUTDOWN_TIMEOUT_MS);
  timer.unref();
  await service.close();
  log.info('stopped');
  process.exit(0);
}

process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled rejection'));
