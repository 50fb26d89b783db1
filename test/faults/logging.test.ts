import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { RedisProcess } from '../support/redis-process.js';
import { ServerProcess } from '../support/server-process.js';
import { until } from '../support/wait.js';

const REDIS_SECRET = 'redis-s3cret-value';
const DB_SECRET = 'pg-s3cret-value';
const BODY_MARKER = 'body-marker-that-must-not-be-logged';

let database: TestDatabase;
let redis: RedisProcess;
let server: ServerProcess;

beforeAll(async () => {
  database = await createTestDatabase();
  redis = await RedisProcess.start(REDIS_SECRET);
  const dbUrl = new URL(database.url);
  dbUrl.password = DB_SECRET; // trust auth ignores it; the server must still never print it
  server = await ServerProcess.start({ REDIS_URL: redis.url, DATABASE_URL: dbUrl.toString(), LOG_LEVEL: 'info' });
});
afterAll(async () => {
  await server?.stop('SIGKILL');
  await redis?.stop();
  await database?.drop();
});

describe('logs at info level', () => {
  it('never hold a secret or a request body, through errors and outages', async () => {
    const post = (path: string, body: string) =>
      fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect((await post('/api/ai/progress/logged', JSON.stringify({ message: BODY_MARKER }))).status).toBe(200);
    expect((await post('/api/ai/progress/logged', JSON.stringify({ message: BODY_MARKER, overallProgress: 500 }))).status).toBe(400);
    expect((await post('/api/ai/progress/logged', `{"message":"${BODY_MARKER}"`)).status).toBe(400);
    expect((await post('/api/books', JSON.stringify({ title: BODY_MARKER, chapters: 1, sectionsPerChapter: 1 }))).status).toBe(201);

    await redis.stop();
    expect((await post('/api/ai/progress/logged', JSON.stringify({ message: BODY_MARKER }))).status).toBe(503);
    await until(() => server.output.includes('redis connection error'), 10_000, 'the outage to be logged');
    await redis.start();
    await until(async () => (await post('/api/ai/progress/logged', JSON.stringify({ message: 'back' }))).status === 200, 15_000, 'publishing again');

    expect(server.output).toContain('"level":30'); // info lines were written, so the check below means something
    expect(server.output).not.toContain(REDIS_SECRET);
    expect(server.output).not.toContain(DB_SECRET);
    expect(server.output).not.toContain(BODY_MARKER);
  });
});
