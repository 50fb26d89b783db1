import { SignJWT, UnsecuredJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { bookId, expectError, progressUrl } from '../server/http.js';
import { startServer } from '../support/service.js';
import { TEST_SECRET, bearer, mintToken } from '../support/tokens.js';

const PREVIOUS_SECRET = 'the-previous-secret-32-bytes-long';
const ISSUER = 'https://app.example.com';
const AUDIENCE = 'booksai-progress';
const claims = { sub: 'alice', tenant: 'acme', scope: 'progress:read progress:write', iss: ISSUER, aud: AUDIENCE };

let service: Service;
let book: string;

beforeAll(async () => {
  service = await startServer({ AUTH_JWT_SECRET: TEST_SECRET, AUTH_JWT_PREVIOUS_SECRET: PREVIOUS_SECRET, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE });
  book = bookId('tokens');
  const res = await fetch(progressUrl(service.url, book), {
    method: 'POST',
    headers: bearer(await mintToken(claims), { 'content-type': 'application/json' }),
    body: JSON.stringify({ message: 'first' }),
  });
  expect(res.status).toBe(200);
});
afterAll(async () => {
  await service.close();
});

const poll = (headers: Record<string, string>) => fetch(progressUrl(service.url, book), { headers });
const now = () => Math.floor(Date.now() / 1000);

describe('a valid token', () => {
  it('reads with Authorization: Bearer, with the booksai_token cookie, and with ?access_token=', async () => {
    const token = await mintToken(claims);
    expect((await poll(bearer(token))).status).toBe(200);
    expect((await poll({ cookie: `theme=dark; booksai_token=${token}` })).status).toBe(200);
    expect((await fetch(`${progressUrl(service.url, book)}?access_token=${token}`)).status).toBe(200);
  });

  it('allows a few seconds of clock skew on nbf and iat, none on exp', async () => {
    expect((await poll(bearer(await mintToken({ ...claims, nbf: now() + 2, iat: now() + 2 })))).status).toBe(200);
    await expectError(await poll(bearer(await mintToken(claims, { ttlSeconds: -1 }))), 401, 'invalid_token');
  });

  it('is accepted when signed with the previous secret, during a rotation', async () => {
    expect((await poll(bearer(await mintToken(claims, { secret: PREVIOUS_SECRET })))).status).toBe(200);
  });

  it('answers with Cache-Control: private and Vary on Authorization and Cookie', async () => {
    const res = await poll(bearer(await mintToken(claims)));
    expect(res.headers.get('cache-control')).toBe('private, no-cache');
    expect(res.headers.get('vary')).toMatch(/Authorization, Cookie/);
  });
});

describe('no token', () => {
  it('is 401 unauthorized with WWW-Authenticate: Bearer on every path, never anonymous', async () => {
    for (const path of [`/api/ai/progress/${book}`, `/api/ai/progress/${book}/stream`, '/api/ai/stream', `/api/ai/stream?books=${book}`, '/api/books', `/api/books/${book}`, '/metrics']) {
      const res = await fetch(`${service.url}${path}`);
      expect(res.headers.get('www-authenticate'), path).toBe('Bearer');
      await expectError(res, 401, 'unauthorized');
    }
    const write = await fetch(progressUrl(service.url, book), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"message":"x"}' });
    await expectError(write, 401, 'unauthorized');
  });

  it('leaves /healthz open', async () => {
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
  });
});

describe('a bad token is 401 invalid_token', () => {
  const refused = async (token: string, message?: RegExp) => {
    const res = await poll(bearer(token));
    expect(res.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    const body = await expectError(res, 401, 'invalid_token');
    if (message) expect(body.error.message).toMatch(message);
    return body;
  };

  it('expired', async () => {
    await refused(await mintToken(claims, { ttlSeconds: -60 }), /expired/);
  });

  it('not valid yet: nbf or iat ahead', async () => {
    await refused(await mintToken({ ...claims, nbf: now() + 120 }), /not valid yet/);
    await refused(await mintToken({ ...claims, iat: now() + 120 }), /not valid yet/);
  });

  it('signed with another secret, without saying why the signature failed', async () => {
    const body = await refused(await mintToken(claims, { secret: 'some-other-secret-of-32-bytes-or-more' }));
    expect(body.error.message).not.toMatch(/signature/i);
  });

  it('alg none', async () => {
    const unsecured = new UnsecuredJWT({ ...claims }).setExpirationTime(now() + 600).encode();
    await refused(unsecured);
  });

  it('an asymmetric token where only a secret is configured', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const token = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'RS256' }).setExpirationTime(now() + 600).sign(privateKey);
    await refused(token);
  });

  it('wrong iss or aud', async () => {
    await refused(await mintToken({ ...claims, iss: 'https://evil.example.com' }), /iss/);
    await refused(await mintToken({ ...claims, aud: 'someone-else' }), /aud/);
  });

  it('without sub or exp', async () => {
    await refused(await mintToken({ ...claims, sub: undefined }));
    const noExp = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(TEST_SECRET));
    await refused(noExp);
  });

  it('claims of the wrong type: tenant a number, books not ids', async () => {
    await refused(await mintToken({ ...claims, tenant: 42 as unknown as string }));
    await refused(await mintToken({ ...claims, books: ['a/b'] }));
  });

  it('garbage, empty parts, a JWK instead of a JWT', async () => {
    for (const token of ['garbage', 'a.b.c', '..', 'eyJhbGciOiJIUzI1NiJ9..', JSON.stringify(await exportJWK((await generateKeyPair('ES256')).publicKey)).replace(/\s/g, '')]) {
      await refused(token);
    }
  });

  it('a malformed Authorization header is refused, not skipped for the cookie', async () => {
    const token = await mintToken(claims);
    const res = await poll({ authorization: 'Basic YWxpY2U6c2VjcmV0', cookie: `booksai_token=${token}` });
    await expectError(res, 401, 'invalid_token');
  });

  it('a bad token in the header is refused even with a good one in the cookie', async () => {
    const res = await poll({ authorization: 'Bearer garbage', cookie: `booksai_token=${await mintToken(claims)}` });
    await expectError(res, 401, 'invalid_token');
  });
});

describe('scopes', () => {
  it('a token without a scope claim reads but cannot publish or start books (403 insufficient_scope)', async () => {
    const token = await mintToken({ ...claims, scope: undefined });
    expect((await poll(bearer(token))).status).toBe(200);
    const publish = await fetch(progressUrl(service.url, book), { method: 'POST', headers: bearer(token, { 'content-type': 'application/json' }), body: '{"message":"x"}' });
    expect(publish.headers.get('www-authenticate')).toBe('Bearer error="insufficient_scope"');
    await expectError(publish, 403, 'insufficient_scope');
    const start = await fetch(`${service.url}/api/books`, { method: 'POST', headers: bearer(token, { 'content-type': 'application/json' }), body: '{"title":"No"}' });
    await expectError(start, 403, 'insufficient_scope');
  });

  it('a write-only token cannot read', async () => {
    const token = await mintToken({ ...claims, scope: 'progress:write' });
    await expectError(await poll(bearer(token)), 403, 'insufficient_scope');
    await expectError(await fetch(`${service.url}/api/ai/progress/${book}/stream`, { headers: bearer(token) }), 403, 'insufficient_scope');
  });

  it('/metrics needs admin', async () => {
    await expectError(await fetch(`${service.url}/metrics`, { headers: bearer(await mintToken(claims)) }), 403, 'insufficient_scope');
    const admin = await fetch(`${service.url}/metrics`, { headers: bearer(await mintToken({ ...claims, scope: 'admin' })) });
    expect(admin.status).toBe(200);
    expect(await admin.text()).toContain('booksai_sse_streams');
  });
});
