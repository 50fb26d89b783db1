import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/server/http/app.js';
import type { AppDeps } from '../../src/server/http/app.js';
import { openApiDocument } from '../../src/server/http/openapi.js';
import { serverForFile } from '../support/service.js';

const server = serverForFile({ BASE_PATH: '/progress' });

describe('GET /api/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document, open, under BASE_PATH, with BASE_PATH as its server', async () => {
    const res = await fetch(`${server.url}/api/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const document = (await res.json()) as Record<string, any>;
    expect(document.openapi).toBe('3.1.0');
    expect(document.servers).toEqual([{ url: '/progress' }]);
    expect(openApiDocument().servers).toEqual([{ url: '/' }]);

    const validator = new Validator();
    const result = await validator.validate(document);
    expect(result.errors ?? [], JSON.stringify(result.errors, null, 1)?.slice(0, 2_000)).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('describes every route, error shape, header, security scheme and stream message', async () => {
    const document = openApiDocument() as Record<string, any>;
    expect(Object.keys(document.paths).sort()).toEqual(
      [
        '/healthz', '/readyz', '/metrics', '/api/openapi.json', '/api/session', '/api/admin/status', '/api/admin/adopt',
        '/api/ai/progress/{bookId}', '/api/ai/progress/{bookId}/text', '/api/ai/progress/{bookId}/stream', '/api/ai/stream', '/api/ai/ws',
        '/api/analytics', '/api/books', '/api/books/{bookId}', '/api/books/{bookId}/timeline', '/api/books/{bookId}/chapters/{n}',
        '/api/books/{bookId}/cancel', '/api/books/{bookId}/retry',
      ].sort(),
    );
    expect(Object.keys(document.components.securitySchemes).sort()).toEqual(['bearerAuth', 'cookieAuth', 'publishToken', 'queryToken', 'tenantHeader']);
    expect(document.components.securitySchemes.cookieAuth).toMatchObject({ type: 'apiKey', in: 'cookie', name: 'booksai_token' });
    expect(document.components.securitySchemes.queryToken).toMatchObject({ type: 'apiKey', in: 'query', name: 'access_token' });
    expect(document.components.securitySchemes.tenantHeader).toMatchObject({ type: 'apiKey', in: 'header', name: 'X-Tenant' });
    for (const name of ['BookProgress', 'PublishBody', 'TextAppend', 'BookRequest', 'Error', 'SseEvent', 'WsClientMessage', 'WsServerMessage']) {
      expect(document.components.schemas, name).toHaveProperty(name);
    }
    // Every error answer of every operation is the one error shape.
    for (const [path, methods] of Object.entries<Record<string, any>>(document.paths)) {
      for (const [method, operation] of Object.entries<any>(methods)) {
        for (const [status, response] of Object.entries<any>(operation.responses)) {
          if (Number(status) < 400) continue;
          expect(response.content['application/json'].schema, `${method} ${path} ${status}`).toEqual({ $ref: '#/components/schemas/Error' });
          if (status === '401') expect(response.headers).toHaveProperty('WWW-Authenticate');
          if (status === '429' || status === '503') expect(response.headers).toHaveProperty('Retry-After');
        }
      }
    }
    const poll = document.paths['/api/ai/progress/{bookId}'].get;
    expect(Object.keys(poll.responses['200'].headers)).toEqual(expect.arrayContaining(['ETag', 'X-Progress-Source']));
    expect(poll.parameters.map((p: { name: string }) => p.name)).toContain('if-none-match');
    expect(document.paths['/api/ai/progress/{bookId}/stream'].get.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['lastEventId', 'last-event-id']));
    // The request schemas are the routes' own: strict bodies are closed.
    expect(document.components.schemas.PublishBody.additionalProperties).toBe(false);
    expect(document.components.schemas.PublishBody.properties).toHaveProperty('title');
  });

  it('has an operation for each route of the app, and none more: a route added without its description fails here', () => {
    // Only what createApp reads while it builds the routes; no handler runs.
    const app = createApp({ auth: { enabled: true }, newest: {}, log: {}, maxBodyBytes: 1, staleAfterMs: 1 } as unknown as AppDeps);
    // The dashboard's pages and the viewer's files are pages, not the API.
    const pages = new Set(['/', '/book/:bookId', '/admin', '/analytics', '/docs', '/docs/assets/:name']);
    const routes = new Set(app.routes.filter((r) => r.method !== 'ALL' && !pages.has(r.path)).map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, '{$1}')}`));
    const document = openApiDocument() as { paths: Record<string, Record<string, unknown>> };
    const operations = new Set(Object.entries(document.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method} ${path}`)));
    expect([...routes].sort()).toEqual([...operations].sort());
  });
});
