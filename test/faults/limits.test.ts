import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { Watch } from '../support/events.js';
import { startTestService } from '../support/service.js';
import { until } from '../support/wait.js';
import { expectError } from '../server/http.js';

let service: Service;

beforeAll(async () => {
  service = await startTestService({ MAX_SSE_CONNECTIONS: '3', MAX_BODY_BYTES: '2048', MAX_BOOKS_PER_STREAM: '2' });
});
afterAll(async () => {
  await service.close();
});

describe('configured limits', () => {
  it('MAX_SSE_CONNECTIONS: past it a stream gets 503 with Retry-After, and a slot frees when a client leaves', async () => {
    const watches = [1, 2, 3].map((i) => new Watch(`${service.url}/api/ai/progress/limit-${i}/stream`));
    await Promise.all(watches.map((w) => w.opened()));
    const refused = await fetch(`${service.url}/api/ai/progress/limit-4/stream`);
    expect(refused.headers.get('retry-after')).not.toBeNull();
    await expectError(refused, 503, 'too_many_connections');
    await expectError(await fetch(`${service.url}/api/ai/stream?books=a,b`), 503, 'too_many_connections');

    watches[0]!.close();
    await until(() => service.streams.size === 2, 5_000, 'the slot to free');
    const admitted = new Watch(`${service.url}/api/ai/progress/limit-4/stream`);
    await admitted.opened();
    for (const w of [...watches, admitted]) w.close();
  });

  it('MAX_BODY_BYTES: one byte over is 413, the limit itself is accepted', async () => {
    const message = (bytes: number) => '{"message":"padded"}'.padEnd(bytes, ' '); // trailing spaces are valid JSON
    expect(Buffer.byteLength(message(2048))).toBe(2048);
    const post = (body: string) => fetch(`${service.url}/api/ai/progress/body-limit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect((await post(message(2048))).status).toBe(200);
    await expectError(await post(message(2049)), 413, 'payload_too_large');
  });

  it('MAX_BOOKS_PER_STREAM: one book over is 400', async () => {
    await expectError(await fetch(`${service.url}/api/ai/stream?books=a,b,c`), 400, 'too_many_books');
  });
});
