import { request } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Service } from '../../src/service.js';
import { startTestService } from '../support/service.js';

let service: Service;

beforeAll(async () => {
  service = await startTestService({ MAX_BOOKS_PER_STREAM: '20' });
  await service.tracker.updateProgress('fuzz-known', { status: 'GENERATING', message: 'known book' });
});
afterAll(async () => {
  await service.close();
});

interface Sent {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

/**
 * One raw request on its own connection (node:http does not normalize `..` or re-encode the path;
 * a server may close a connection after refusing a body, so none is reused); streams are cut after the headers.
 */
function send(req: Sent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const url = new URL(service.url);
    const headers = req.body ? { ...req.headers, 'content-length': String(req.body.length) } : req.headers;
    const r = request({ host: url.hostname, port: url.port, agent: false, method: req.method, path: req.path, headers }, (res) => {
      const contentType = String(res.headers['content-type'] ?? '');
      if (contentType.startsWith('text/event-stream')) {
        res.destroy();
        resolve({ status: res.statusCode ?? 0, contentType, body: '' });
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(req.body);
  });
}

const segment = fc.oneof(
  fc.constantFrom('fuzz-known', 'stream', '..', '.', '%00', '%2F', '%2e%2e', 'b%C3%B6k', '%', '%zz', 'a'.repeat(129), ''),
  fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/),
  fc.string({ maxLength: 30 }).map(encodeURIComponent),
);
const path = fc.oneof(
  fc.tuple(segment).map(([id]) => `/api/ai/progress/${id}`),
  fc.tuple(segment).map(([id]) => `/api/ai/progress/${id}/stream`),
  fc.array(segment, { maxLength: 30 }).map((ids) => `/api/ai/stream?books=${ids.join(',')}`),
  fc.tuple(segment).map(([id]) => `/api/books/${id}`),
  fc.constantFrom('/api/books', '/api/books?limit=0', '/api/books?limit=abc', '/healthz', '/metrics', '/', '/book/x', '/assets/%2e%2e/package.json', '/nope'),
  fc.array(segment, { maxLength: 6 }).map((parts) => `/${parts.join('/')}`),
);
const headerValue = fc.stringMatching(/^[\x20-\x7e]{0,40}$/);
const lastEventId = fc.oneof(headerValue, fc.constantFrom('-1', '1e9', '99999999999999999999', 'NaN', '1.2', '0', '3.4.5'), fc.nat().map(String));
const update = fc.record(
  {
    status: fc.oneof(fc.constantFrom('PLANNING', 'GENERATING', 'COMPLETE', 'ERROR', 'DONE'), fc.anything()),
    generationStep: fc.oneof(fc.constantFrom('PLANNING', 'CHAPTERS', 'COMPLETE', 'WRITING'), fc.anything()),
    currentChapter: fc.oneof(fc.integer({ min: -5, max: 60 }), fc.double(), fc.anything()),
    totalChapters: fc.oneof(fc.integer({ min: -5, max: 60 }), fc.anything()),
    overallProgress: fc.oneof(fc.double({ min: -50, max: 200 }), fc.anything()),
    message: fc.oneof(fc.string({ maxLength: 200 }), fc.constant('line\n\nevent: x\ndata: forged\r\nid: 9'), fc.string({ minLength: 2_001, maxLength: 2_100 })),
    title: fc.string({ maxLength: 210 }),
    chapters: fc.integer({ min: -2, max: 60 }),
    extra: fc.anything(),
  },
  { requiredKeys: [] },
);
const body = fc.oneof(
  update.map((u) => Buffer.from(JSON.stringify(u))),
  fc.json().map((j) => Buffer.from(j)),
  fc.string({ maxLength: 100 }).map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
  fc.constant(Buffer.from('['.repeat(5_000) + ']'.repeat(5_000))),
  fc.constant(Buffer.alloc(64 * 1024 + 1, 'a')),
);
const sent: fc.Arbitrary<Sent> = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'),
  path,
  headers: fc.record(
    {
      'content-type': fc.constantFrom('application/json', 'text/plain', 'application/json; charset=latin1', 'multipart/form-data'),
      'last-event-id': lastEventId,
      'if-none-match': headerValue,
      accept: fc.constantFrom('text/event-stream', '*/*', 'application/json'),
      'accept-encoding': fc.constantFrom('gzip', 'identity', 'br', 'x'),
    },
    { requiredKeys: [] },
  ),
  body: fc.option(body, { nil: undefined }),
});

describe('property: any request', () => {
  it('never gets a 5xx or a crash, and every error is the JSON error shape', async () => {
    // The HTTP adapter reports a response it failed to write on console.error: none may happen.
    const adapterErrors = vi.spyOn(console, 'error');
    await fc.assert(
      fc.asyncProperty(sent, async (req) => {
        const answer = await send(req);
        expect(answer.status, `${req.method} ${req.path}`).toBeLessThan(500);
        if (answer.status >= 400 && req.method !== 'HEAD') {
          const parsed = JSON.parse(answer.body) as { success: unknown; error: { code: unknown; message: unknown } };
          expect(parsed.success).toBe(false);
          expect(typeof parsed.error.code).toBe('string');
          expect(typeof parsed.error.message).toBe('string');
          expect(answer.body).not.toMatch(/\n\s+at |node_modules/);
        }
      }),
      { numRuns: 2_000 },
    );
    expect(adapterErrors).not.toHaveBeenCalled();
    adapterErrors.mockRestore();
    // Still serving, and still correct.
    const healthy = await send({ method: 'GET', path: '/healthz', headers: {} });
    expect(healthy.status).toBe(200);
    const published = await send({ method: 'POST', path: '/api/ai/progress/fuzz-after', headers: { 'content-type': 'application/json' }, body: Buffer.from('{"message":"still fine"}') });
    expect(published.status).toBe(200);
    const polled = await send({ method: 'GET', path: '/api/ai/progress/fuzz-after', headers: {} });
    expect(JSON.parse(polled.body)).toMatchObject({ success: true, data: { message: 'still fine', version: 1 } });
  }, 120_000);
});
