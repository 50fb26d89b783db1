import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { startServer } from '../support/service.js';
import { expectError } from './http.js';

const TOKEN = 'a-publish-token-of-some-length';
let service: Service;

beforeAll(async () => {
  service = await startServer({ PUBLISH_TOKEN: TOKEN });
});
afterAll(async () => {
  await service.close();
});

const post = (path: string, body: object, authorization?: string) =>
  fetch(`${service.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
    body: JSON.stringify(body),
  });

describe('PUBLISH_TOKEN', () => {
  it('guards publishing and starting books with a bearer token', async () => {
    const refused = await post('/api/ai/progress/guarded', { message: 'x' });
    expect(refused.headers.get('www-authenticate')).toBe('Bearer');
    await expectError(refused, 401, 'unauthorized');
    await expectError(await post('/api/ai/progress/guarded', { message: 'x' }, 'Bearer not-the-token-at-all'), 401, 'unauthorized');
    await expectError(await post('/api/books', { title: 'No' }, 'Bearer wrong-token-wrong-token'), 401, 'unauthorized');
    await expectError(await post('/api/ai/progress/guarded', { message: 'x' }, 'Basic abc'), 401, 'unauthorized');

    expect((await post('/api/ai/progress/guarded', { message: 'x' }, `Bearer ${TOKEN}`)).status).toBe(200);
    expect((await post('/api/books', { title: 'Yes', chapters: 1, sectionsPerChapter: 1 }, `Bearer ${TOKEN}`)).status).toBe(201);
  });

  it('leaves reading open: poll, stream, books', async () => {
    expect((await fetch(`${service.url}/api/ai/progress/guarded`)).status).toBe(200);
    const stream = await fetch(`${service.url}/api/ai/progress/guarded/stream`);
    expect(stream.status).toBe(200);
    await stream.body?.cancel();
    expect((await fetch(`${service.url}/api/books`)).status).toBe(200);
  });
});
