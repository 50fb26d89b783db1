import { randomBytes } from 'node:crypto';
import postgres from 'postgres';

/** The shared services of this machine and CI; tests never stop or flush them. */
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const POSTGRES_ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A key prefix no other run shares, so runs on one Redis cannot collide. */
export function uniquePrefix(): string {
  return `booksai-test-${process.pid}-${randomBytes(4).toString('hex')}:`;
}

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** A fresh, empty database on the shared Postgres; drop() removes it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `booksai_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = postgres(POSTGRES_ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: async () => {
      const dropper = postgres(POSTGRES_ADMIN_URL, { max: 1, onnotice: () => {} });
      try {
        await dropper.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await dropper.end();
      }
    },
  };
}
