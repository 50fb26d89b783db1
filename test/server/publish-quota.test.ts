import { describe, expect, it } from 'vitest';
import { serverForFile } from '../support/service.js';
import { TEST_SECRET, bearer, mintToken } from '../support/tokens.js';

const RATE = 5;
const server = serverForFile({ AUTH_JWT_SECRET: TEST_SECRET, MAX_PUBLISHES_PER_SECOND_PER_TENANT: String(RATE) });

async function publish(token: string, bookId: string, message: string): Promise<Response> {
  return fetch(`${server.url}/api/ai/progress/${bookId}`, { method: 'POST', headers: bearer(token, { 'Content-Type': 'application/json' }), body: JSON.stringify({ message }) });
}

describe('MAX_PUBLISHES_PER_SECOND_PER_TENANT', () => {
  it('lets a tenant burst to twice its rate, then answers 429 with Retry-After; another tenant publishes and reads meanwhile', async () => {
    const flooder = await mintToken({ sub: 'flood', tenant: 'flooder', scope: 'progress:write progress:read' });
    const calm = await mintToken({ sub: 'calm', tenant: 'calm', scope: 'progress:write progress:read' });

    const statuses: number[] = [];
    let refused: Response | undefined;
    for (let i = 0; i < RATE * 2 + 5; i++) {
      const response = await publish(flooder, 'flooded-book', `flood ${i}`);
      statuses.push(response.status);
      if (response.status === 429) refused ??= response;
      else await response.body?.cancel();
    }
    // The burst (two seconds' worth, plus what refilled while it ran), then refusals.
    expect(statuses.filter((status) => status === 200).length).toBeGreaterThanOrEqual(RATE * 2);
    expect(statuses).toContain(429);
    expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await refused!.json()).toMatchObject({ success: false, error: { code: 'rate_limited', message: expect.stringContaining('tenant flooder') } });

    // The other tenant is not limited by the flood, and reads stay open to the flooder too.
    for (let i = 0; i < RATE; i++) expect((await publish(calm, 'calm-book', `calm ${i}`)).status).toBe(200);
    expect((await fetch(`${server.url}/api/ai/progress/flooded-book`, { headers: bearer(flooder) })).status).toBe(200);
  });

  it('counts text appends as publishes', async () => {
    const writer = await mintToken({ sub: 'texter', tenant: 'texter', scope: 'progress:write progress:read' });
    expect((await publish(writer, 'text-book', 'begin')).status).toBe(200);
    const statuses: number[] = [];
    for (let i = 0; i < RATE * 3; i++) {
      const response = await fetch(`${server.url}/api/ai/progress/text-book/text`, {
        method: 'POST',
        headers: bearer(writer, { 'Content-Type': 'application/json' }),
        body: JSON.stringify({ chapter: 1, section: 1, offset: i, text: 'x' }),
      });
      statuses.push(response.status);
      await response.body?.cancel();
    }
    expect(statuses).toContain(429);
    expect(statuses.filter((status) => status === 200).length).toBeGreaterThanOrEqual(RATE * 2 - 1);
  });

  it('counts only publishes: a refused caller is refused by auth first, and reads never count', async () => {
    const reader = await mintToken({ sub: 'reader', tenant: 'reader', scope: 'progress:read' });
    expect((await publish(reader, 'reader-book', 'no scope')).status).toBe(403);
    expect((await fetch(`${server.url}/api/ai/progress/reader-book`, { method: 'POST', body: '{}' })).status).toBe(401);
    for (let i = 0; i < RATE * 3; i++) expect((await fetch(`${server.url}/api/ai/progress/flooded-book`, { headers: bearer(reader) })).status).not.toBe(429);
  });
});
