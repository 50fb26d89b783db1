import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { bookId, expectError, progressUrl } from '../server/http.js';
import { startServer } from '../support/service.js';
import { bearer } from '../support/tokens.js';
import { until } from '../support/wait.js';

/** The identity provider: a JWK Set over HTTP whose keys the test changes while the server runs. */
const published: JWK[] = [];
let requests = 0;
let jwksServer: Server;
let service: Service;
const keys = new Map<string, { alg: string; privateKey: CryptoKey; publicKey: CryptoKey }>();

async function addKey(kid: string, alg: string): Promise<void> {
  const pair = await generateKeyPair(alg, { extractable: true });
  keys.set(kid, { alg, ...pair });
  published.push({ ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' });
}

async function sign(kid: string, claims: Record<string, unknown> = {}): Promise<string> {
  const key = keys.get(kid)!;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ tenant: 'acme', scope: 'progress:read progress:write', ...claims })
    .setProtectedHeader({ alg: key.alg, kid })
    .setSubject('alice')
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(key.privateKey);
}

let book: string;
beforeAll(async () => {
  await addKey('rsa-1', 'RS256');
  await addKey('ec-1', 'ES256');
  await addKey('ed-1', 'EdDSA');
  jwksServer = createServer((_req, res) => {
    requests++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published }));
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  service = await startServer({ AUTH_JWKS_URL: `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json` });
  book = bookId('jwks');
  const res = await fetch(progressUrl(service.url, book), { method: 'POST', headers: bearer(await sign('rsa-1'), { 'content-type': 'application/json' }), body: '{"message":"x"}' });
  expect(res.status).toBe(200);
});
afterAll(async () => {
  await service.close();
  jwksServer.close();
});

const poll = (token: string) => fetch(progressUrl(service.url, book), { headers: bearer(token) });

describe('AUTH_JWKS_URL', () => {
  it('accepts RS256, ES256 and EdDSA tokens signed by keys of the set', async () => {
    for (const kid of ['rsa-1', 'ec-1', 'ed-1']) expect((await poll(await sign(kid))).status, kid).toBe(200);
  });

  it('caches the set: many tokens, few fetches', async () => {
    const before = requests;
    for (let i = 0; i < 20; i++) expect((await poll(await sign('ec-1', { jti: String(i) }))).status).toBe(200);
    expect(requests - before).toBeLessThanOrEqual(1);
  });

  it('picks up a key added to the set without a restart', async () => {
    await addKey('rsa-2', 'RS256');
    const token = await sign('rsa-2');
    // A new kid refetches the set, at most once per few seconds (a flood of unknown kids costs little).
    await until(async () => (await poll(token)).status === 200, 10_000, 'the new key to be accepted');
  });

  it('refuses an HS256 token signed with the public key as the secret (algorithm confusion)', async () => {
    const { publicKey } = keys.get('rsa-1')!;
    const now = Math.floor(Date.now() / 1000);
    for (const secret of [await exportSPKI(publicKey), JSON.stringify(await exportJWK(publicKey))]) {
      const forged = await new SignJWT({ tenant: 'acme' })
        .setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' })
        .setSubject('alice')
        .setExpirationTime(now + 600)
        .sign(new TextEncoder().encode(secret));
      await expectError(await poll(forged), 401, 'invalid_token');
    }
  });

  it('refuses a token whose kid is in no set, and one signed by a key not published', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const now = Math.floor(Date.now() / 1000);
    const stranger = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' }).setSubject('alice').setExpirationTime(now + 600).sign(privateKey);
    await expectError(await poll(stranger), 401, 'invalid_token');
    const unknownKid = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'nobody' }).setSubject('alice').setExpirationTime(now + 600).sign(privateKey);
    await expectError(await poll(unknownKid), 401, 'invalid_token');
  });
});
