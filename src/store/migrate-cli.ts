import { pino } from 'pino';
import { loadConfig } from '../config.js';
import { migrateDatabase } from './database.js';

/**
 * `npm run db:migrate`: applies pending migrations to the Postgres at DATABASE_URL and exits,
 * for deployments that migrate before starting servers (the server also migrates at start).
 */
let databaseUrl: string;
let logLevel: string;
try {
  const config = loadConfig(process.env);
  if (config.databaseUrl === null) throw new Error('DATABASE_URL is required: the Postgres database to migrate, e.g. postgres://user:password@host:5432/booksai');
  databaseUrl = config.databaseUrl;
  logLevel = config.logLevel;
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}

const log = pino({ level: logLevel, base: { service: 'booksai-progress', task: 'migrate' } });
const target = new URL(databaseUrl);
const where = { host: target.host, database: target.pathname.slice(1) };
try {
  await migrateDatabase(databaseUrl);
  log.info(where, 'migrations applied');
  process.exit(0);
} catch (error) {
  log.error({ ...where, err: (error as Error).message }, 'migrations failed');
  process.exit(1);
}
