import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { bookId, expectError, progressUrl } from '../server/http.js';
import { startServer } from '../support/service.js';
import { TEST_SECRET, bearer, mintToken } from '../support/tokens.js';

const run = promisify(execFile);

/** `npm run token -- …` as a developer runs it: the real script, its stdout and exit code. */
async function token(args: string[], env: Record<string, string> = { AUTH_JWT_SECRET: TEST_SECRET }) {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli/token.ts', ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

let service: Service;
beforeAll(async () => {
  service = await startServer({ AUTH_JWT_SECRET: TEST_SECRET });
});
afterAll(async () => {
  await service.close();
});

describe('npm run token', () => {
  it('mints a token the server accepts, with the claims asked for', async () => {
    const id = bookId('cli');
    const writer = await mintToken({ sub: 'svc', tenant: 'acme', scope: 'progress:write' });
    expect((await fetch(progressUrl(service.url, id), { method: 'POST', headers: bearer(writer, { 'content-type': 'application/json' }), body: '{"message":"x"}' })).status).toBe(200);

    const minted = await token(['--sub', 'alice', '--tenant', 'acme', '--scope', 'progress:read books:write', '--books', `${id},other`, '--ttl', '15m']);
    expect(minted.code).toBe(0);
    const jwt = minted.stdout.trim();
    const claims = decodeJwt(jwt);
    expect(claims).toMatchObject({ sub: 'alice', tenant: 'acme', scope: 'progress:read books:write', books: [id, 'other'] });
    expect((claims.exp as number) - (claims.iat as number)).toBe(900);
    expect((await fetch(progressUrl(service.url, id), { headers: bearer(jwt) })).status).toBe(200);

    const otherTenant = (await token(['--sub', 'bob', '--tenant', 'globex'])).stdout.trim();
    await expectError(await fetch(progressUrl(service.url, id), { headers: bearer(otherTenant) }), 404, 'not_found');
  });

  it('says what is missing, with exit code 2', async () => {
    const noSub = await token(['--tenant', 'acme']);
    expect(noSub.code).toBe(2);
    expect(noSub.stderr).toMatch(/--sub is required/);
    const badTtl = await token(['--sub', 'a', '--ttl', 'soon']);
    expect(badTtl.code).toBe(2);
    expect(badTtl.stderr).toMatch(/--ttl/);
    const noSecret = await token(['--sub', 'a'], {});
    expect(noSecret.code).toBe(2);
    expect(noSecret.stderr).toMatch(/AUTH_JWT_SECRET/);
  });
});
