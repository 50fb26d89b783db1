import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startService } from '../../src/service.js';
import type { Service } from '../../src/service.js';
import { createTestDatabase } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { freePort } from '../support/ports.js';
import { startServer, testConfig } from '../support/service.js';
import { TEST_SECRET, bearer, mintToken } from '../support/tokens.js';
import { until, withTimeout } from '../support/wait.js';
import { bookId, expectError, progressUrl } from '../server/http.js';

/** One raw request (node:http sends the path as given: no dot-segment resolution, no re-encoding). */
function raw(baseUrl: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; type: string }> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, headers, agent: false }, (res) => {
      const type = String(res.headers['content-type'] ?? '');
      if (type.startsWith('text/event-stream')) {
        res.destroy();
        return resolve({ status: res.statusCode ?? 0, body: '', type });
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), type }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('with authentication on', () => {
  let service: Service;
  let database: TestDatabase;
  const logs: string[] = [];
  let token: string;
  let book: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logs.push(chunk.toString());
        done();
      },
    });
    // Everything the server logs, at the most verbose level.
    service = await startService(testConfig({ DATABASE_URL: database.url, AUTH_JWT_SECRET: TEST_SECRET, LOG_LEVEL: 'trace' }), pino({ level: 'trace' }, sink));
    token = await mintToken({ sub: 'alice', tenant: 'acme', scope: 'progress:read progress:write' });
    book = bookId('surface');
    const res = await fetch(progressUrl(service.url, book), { method: 'POST', headers: bearer(token, { 'content-type': 'application/json' }), body: '{"message":"x"}' });
    expect(res.status).toBe(200);
  });
  afterAll(async () => {
    await service.close();
    await database.drop();
  });

  it('answers 400 to dot segments, raw or percent-encoded, on every route: never resolved to another one', async () => {
    const q = `access_token=${token}`;
    for (const path of [
      `/api/ai/progress/x/%2e%2e/%2e%2e/stream?${q}`,
      `/api/ai/progress/x/../../stream?${q}`,
      `/api/ai/progress/x/.%2e/.%2E/stream?${q}`,
      `/api/ai/progress/x/%2E./stream?${q}`,
      `/api/ai/progress/${book}/./stream?${q}`,
      `/api/ai/progress/x/..%2fstream?${q}`,
      `/api/ai/progress/x\\..\\..\\stream?${q}`,
      `/api/books/%2e%2e?${q}`,
      '/%2e%2e/metrics',
      '/api/ai/ws/..',
    ]) {
      const answer = await raw(service.url, path);
      expect(answer.status, path).toBe(400);
      expect(JSON.parse(answer.body).error.code, path).toBe('invalid_path');
    }
    // Dots inside a segment are not segments: a 404 for a route that does not exist.
    expect((await raw(service.url, `/api/ai/progress/a..b?${q}`)).status).toBe(400); // not a valid book id either
    expect((await raw(service.url, `/api/ai/progress/${book}?${q}&x=../..`)).status).toBe(200);
  });

  it('refuses a WebSocket upgrade on a path with dot segments with 400', async () => {
    // Sent raw: a WebSocket client would resolve the segments itself before asking.
    const url = new URL(service.url);
    const req = request({
      host: url.hostname,
      port: url.port,
      path: `/api/ai/%2e%2e/ai/ws?access_token=${token}`,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
      agent: false,
    });
    req.end();
    const [response] = (await withTimeout(once(req, 'response'), 5_000, 'the refusal')) as [{ statusCode: number }];
    expect(response.statusCode).toBe(400);
  });

  it('never answers a 5xx to any Authorization, cookie or access_token value', async () => {
    const valueArb = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.constantFrom(token, `${token}x`, token.slice(0, -2), token.replace(/\./g, ''), '', ' ', 'Bearer', 'null', '%00', 'a'.repeat(5_000)),
      fc.tuple(fc.base64String({ maxLength: 60 }), fc.base64String({ maxLength: 200 }), fc.base64String({ maxLength: 60 })).map((p) => p.join('.')),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('authorization', 'cookie', 'query'), valueArb, fc.constantFrom('', 'Bearer ', 'booksai_token='), async (where, value, prefix) => {
        const headers: Record<string, string> = {};
        let path = `/api/ai/progress/${book}`;
        if (where === 'query') path += `?access_token=${encodeURIComponent(value)}`;
        else headers[where] = `${prefix}${value}`;
        let answer;
        try {
          answer = await raw(service.url, path, headers);
        } catch (error) {
          // node:http refuses to send some header values at all: nothing reached the server.
          if ((error as NodeJS.ErrnoException).code === 'ERR_INVALID_CHAR') return;
          throw error;
        }
        expect(answer.status).toBeLessThan(500);
        if (answer.status !== 200) {
          expect(answer.type).toMatch(/^application\/json/);
          expect(JSON.parse(answer.body).success).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('never writes a token from the query, good or bad, into a log', async () => {
    const expired = await mintToken({ sub: 'alice', tenant: 'acme' }, { ttlSeconds: -5 });
    const forged = `${token.slice(0, -4)}AAAA`;
    for (const secret of [token, expired, forged]) {
      const q = `access_token=${secret}`;
      for (const path of [`/api/ai/progress/${book}?${q}`, `/api/ai/progress/nope?${q}`, `/api/ai/progress/bad%20id?${q}`, `/api/ai/stream?books=${book}&${q}`, `/api/books?${q}&limit=zzz`, `/no/route?${q}`, `/api/ai/x/%2e%2e?${q}`, `/metrics?${q}`]) {
        await raw(service.url, path);
      }
      const ws = new WebSocket(`${service.url.replace('http', 'ws')}/api/ai/ws?${q}`);
      ws.on('error', () => {});
      await Promise.race([once(ws, 'open'), once(ws, 'unexpected-response')]);
      ws.terminate();
    }
    expect(logs.length).toBeGreaterThan(0);
    const all = logs.join('');
    for (const secret of [token, expired, forged]) {
      expect(all).not.toContain(secret);
      expect(all).not.toContain(secret.split('.')[2]);
    }
    expect(all).not.toContain('unhandled error');
  });
});

describe('JWK Set unreachable', () => {
  it('answers 503 auth_unavailable with Retry-After: not the client\'s fault', async () => {
    const port = await freePort();
    const service = await startServer({ AUTH_JWKS_URL: `http://127.0.0.1:${port}/jwks.json` });
    try {
      const { generateKeyPair, SignJWT } = await import('jose');
      const { privateKey } = await generateKeyPair('ES256');
      const now = Math.floor(Date.now() / 1000);
      const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k' }).setSubject('alice').setExpirationTime(now + 60).sign(privateKey);
      const res = await fetch(progressUrl(service.url, 'any'), { headers: bearer(jwt) });
      expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
      await expectError(res, 503, 'auth_unavailable');
    } finally {
      await service.close();
    }
  });
});

/** `node src/main.ts` with `env`: its exit code and output, or 'running' once /healthz answers. */
async function startProcess(env: Record<string, string>): Promise<{ exit: number | 'running'; output: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { PATH: process.env.PATH ?? '', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  let exit: number | undefined;
  child.once('exit', (code) => (exit = code as number));
  try {
    // Ends on whichever comes first: the process exits, or /healthz answers.
    await until(async () => exit !== undefined || (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)), 30_000, 'the process to start or exit');
    return { exit: exit ?? 'running', output };
  } finally {
    child.kill('SIGKILL');
  }
}

describe('modes', () => {
  it('refuses to start in production without authentication, naming the settings', async () => {
    const { exit, output } = await startProcess({ NODE_ENV: 'production', REDIS_URL: '', DATABASE_URL: '' });
    expect(exit).toBe(1);
    expect(output).toContain('AUTH_JWT_SECRET');
    expect(output).toContain('AUTH_JWKS_URL');
    expect(output).not.toMatch(/\n\s+at /);
  });

  it('runs open in production only with AUTH_MODE=open said explicitly, and warns', async () => {
    const { exit, output } = await startProcess({ NODE_ENV: 'production', AUTH_MODE: 'open', DATA_DIR: `/tmp/booksai-open-${process.pid}` });
    expect(exit).toBe('running');
    expect(output).toMatch(/authentication is off/);
  });

  it('refuses a secret shorter than 32 bytes', async () => {
    const { exit, output } = await startProcess({ AUTH_JWT_SECRET: 'short-secret' });
    expect(exit).toBe(1);
    expect(output).toMatch(/AUTH_JWT_SECRET: must be at least 32 bytes/);
  });
});
