import type { Service } from '../../src/service.js';
import { createTestDatabase } from '../support/backends.js';
import { startTestService } from '../support/service.js';

/**
 * A real server on an ephemeral port, with the shared Redis under a unique prefix and a fresh
 * database on the shared Postgres (it starts in milliseconds, where PGlite takes seconds).
 * close() stops the server, then drops the database.
 */
export async function startServer(env: Record<string, string | undefined> = {}): Promise<Service> {
  const database = await createTestDatabase();
  let service: Service;
  try {
    service = await startTestService({ DATABASE_URL: database.url, ...env });
  } catch (error) {
    await database.drop();
    throw error;
  }
  return {
    ...service,
    close: async () => {
      await service.close();
      await database.drop();
    },
  };
}
