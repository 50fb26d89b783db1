import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import type { ResponseConfig, RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { SCOPES } from '../../auth/caller.js';
import { BookIdSchema, BookProgressSchema, ProgressUpdateSchema } from '../../progress/schema.js';
import { ClientMessageSchema, WEBSOCKET_PATH } from '../delivery/websocket-protocol.js';
import * as api from './api-schemas.js';
import { AdoptSchema } from './routes/admin.js';
import { BookRequestSchema, ChapterQuerySchema, ListQuerySchema } from './routes/books.js';
import { TitleSchema } from './routes/progress.js';
import { TextAppendSchema } from './routes/text.js';

/**
 * The OpenAPI 3.1 document of the HTTP API, generated from the zod schemas the routes validate
 * with (routes/*.ts, progress/schema.ts) and the answers' schemas (api-schemas.ts); served at
 * `GET /api/openapi.json`. Each route is described here, once, beside the others.
 */

export const OPENAPI_PATH = '/api/openapi.json';

const errorJson = { 'application/json': { schema: api.ErrorBodySchema } };
const retryAfter = { 'Retry-After': { description: 'seconds to wait before retrying', schema: { type: 'integer' as const } } };
const challenge = { 'WWW-Authenticate': { description: 'RFC 6750: `Bearer`, or `Bearer error="invalid_token"` / `"insufficient_scope"`', schema: { type: 'string' as const } } };
const etag = { ETag: { description: 'the version, quoted: send it back in If-None-Match', schema: { type: 'string' as const } } };

const refusals: Record<number, ResponseConfig> = {
  400: { description: 'a bad parameter, body or header: `invalid_book_id`, `invalid_json`, `invalid_query`, `invalid_path`, `tenant_required`, …', content: errorJson },
  401: { description: '`unauthorized` (no token) or `invalid_token` (expired, forged, malformed)', headers: challenge, content: errorJson },
  403: { description: '`insufficient_scope` (the token lacks the scope)', headers: challenge, content: errorJson },
  404: { description: '`not_found`: unknown, or another tenant\'s (indistinguishable)', content: errorJson },
  409: { description: '`invalid_state`, `offset_mismatch` (`error.details.length`), `fenced`, `book_finished` (text for a COMPLETE or ERROR book), `conflict` (concurrent publishers; with Retry-After)', content: errorJson },
  413: { description: '`payload_too_large` (past MAX_BODY_BYTES), `text_too_large`', content: errorJson },
  429: { description: '`rate_limited` (MAX_PUBLISHES_PER_SECOND_PER_TENANT) or `too_many_connections`', headers: retryAfter, content: errorJson },
  503: { description: 'a backend is down or slow: `broker_unavailable`, `broker_full`, `database_unavailable`, `too_many_streams`, `auth_unavailable`', headers: retryAfter, content: errorJson },
};
const pick = (...codes: number[]) => Object.fromEntries(codes.map((code) => [code, refusals[code] as ResponseConfig]));
const ok = (description: string, data: z.ZodType, headers?: ResponseConfig['headers']): ResponseConfig => ({
  description,
  ...(headers ? { headers } : {}),
  content: { 'application/json': { schema: api.envelope(data) } },
});

type Security = Array<Record<string, string[]>>;
const read = (scope: string): Security => [{ bearerAuth: [scope] }, { cookieAuth: [scope] }, { queryToken: [scope] }];
const write = (scope: string): Security => [...read(scope), { publishToken: [], tenantHeader: [] }];
const bookParams = z.object({ bookId: BookIdSchema });
const sseAuth = read('progress:read');
const streamQuery = {
  lastEventId: z.string().optional().meta({ description: 'as the Last-Event-ID header, for clients that cannot set it' }),
  text: z.enum(['1', 'true']).optional().meta({ description: 'live text too: `text` and `chapter` events (docs/live-text.md "Streaming")' }),
  heartbeats: z.enum(['1', 'true']).optional().meta({ description: 'heartbeats as `event: heartbeat` events (the first at once), so a browser client notices a proxy that holds the stream back' }),
};
const textFrom = z.string().optional().meta({ description: 'with `text`: where the client is in the text, `<chapter>:<section>[:<attempt>]:<offset>`, for a stream opened anew' });
const lastEventIdHeader = z.object({
  'last-event-id': z.string().optional().meta({ description: 'the id of the last event received (EventSource sends it): only newer states follow' }),
});
const sse = (description: string): ResponseConfig => ({ description, content: { 'text/event-stream': { schema: api.SseEventSchema } } });

const TextAppendDoc = TextAppendSchema.meta({ id: 'TextAppend' });
const BookRequestDoc = BookRequestSchema.meta({ id: 'BookRequest' });
const AdoptDoc = AdoptSchema.meta({ id: 'AdoptRequest' });
const WsClientMessageDoc = ClientMessageSchema.meta({ id: 'WsClientMessage', description: 'A text frame from the client: JSON.' });

export const PublishBodySchema = ProgressUpdateSchema.extend({ title: TitleSchema.optional() }).meta({ id: 'PublishBody' });

function routes(): RouteConfig[] {
  return [
    { method: 'get', path: '/healthz', tags: ['Operations'], summary: 'Liveness', security: [], responses: { 200: ok('the process serves', api.HealthSchema) } },
    {
      method: 'get', path: '/readyz', tags: ['Operations'], summary: 'Readiness, for load balancers', security: [],
      responses: { 200: ok('every backend answers and the process is not shutting down', api.ReadinessSchema), 503: { description: '`not_ready`, the report in `error.details`', headers: retryAfter, content: errorJson } },
    },
    {
      method: 'get', path: '/metrics', tags: ['Operations'], summary: 'Prometheus metrics (admin scope with authentication on)', security: read('admin'),
      responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: z.string() } } }, ...pick(401, 403) },
    },
    {
      method: 'get', path: OPENAPI_PATH, tags: ['Operations'], summary: 'This document', security: [],
      responses: { 200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } } } },
    },
    {
      method: 'get', path: '/api/admin/status', tags: ['Operations'], summary: "The operator view's status: this process and the cluster-wide queue",
      description: '`admin` with authentication on; open otherwise, as /metrics.', security: read('admin'),
      responses: { 200: ok('what this process holds', api.AdminStatusSchema), ...pick(401, 403) },
    },
    {
      method: 'post', path: '/api/admin/adopt', tags: ['Operations'], summary: 'Give books without a tenant to a tenant', security: read('admin'),
      request: { body: { required: true, content: { 'application/json': { schema: AdoptDoc } } } },
      responses: { 200: ok('what was adopted, unchanged or refused', api.AdoptResultSchema), ...pick(400, 401, 403, 413, 503) },
    },
    { method: 'get', path: '/api/session', tags: ['Session'], summary: 'Who the request is', security: read('progress:read'), responses: { 200: ok('the caller', api.SessionSchema), ...pick(401) } },
    {
      method: 'get', path: '/api/ai/progress/{bookId}', tags: ['Progress'], summary: 'Latest state of a book (the legacy poll)',
      description: 'Answered from memory when this process follows the book (the edge\'s fast path, same answer), else Redis, else Postgres.',
      security: read('progress:read'),
      request: { params: bookParams, headers: z.object({ 'if-none-match': z.string().optional().meta({ description: 'an ETag received before: 304 while it is the latest' }) }) },
      responses: {
        200: ok('the latest state', BookProgressSchema, {
          ...etag,
          'X-Progress-Source': { description: 'who answered', schema: { type: 'string', enum: ['redis', 'memory', 'database', 'cache'] } },
          'Cache-Control': { description: '`private, no-cache`', schema: { type: 'string' } },
        }),
        304: { description: 'If-None-Match matched: the state did not change', headers: etag },
        ...pick(400, 401, 403, 404, 503),
      },
    },
    {
      method: 'post', path: '/api/ai/progress/{bookId}', tags: ['Progress'], summary: 'Publish a partial update',
      description: 'Unknown fields are refused. `overallProgress` is derived when not given. `title` names the book in Postgres (not part of the state).',
      security: write('progress:write'),
      request: { params: bookParams, body: { required: true, content: { 'application/json': { schema: PublishBodySchema } } } },
      responses: { 200: ok('the new state, with its version', BookProgressSchema), ...pick(400, 401, 403, 404, 409, 413, 429, 503) },
    },
    {
      method: 'post', path: '/api/ai/progress/{bookId}/text', tags: ['Live text'], summary: "Append to a section's live text",
      description: 'docs/live-text.md "Writing". `offset` is in UTF-8 bytes; a mismatch writes nothing (409 `offset_mismatch`, `error.details.length`).',
      security: write('progress:write'),
      request: { params: bookParams, body: { required: true, content: { 'application/json': { schema: TextAppendDoc } } } },
      responses: { 200: ok('appended', api.TextAppendedSchema), ...pick(400, 401, 403, 404, 409, 413, 503) },
    },
    {
      method: 'get', path: '/api/ai/progress/{bookId}/stream', tags: ['Streams'], summary: 'Server-Sent Events for one book',
      description: 'The current state first, then every update; ends after COMPLETE or ERROR, or with `event: auth` when the token expires.',
      security: sseAuth,
      request: { params: bookParams, query: z.object({ ...streamQuery, textFrom }), headers: lastEventIdHeader },
      responses: { 200: sse('the stream'), 204: { description: 'the client already has the final state: stop reconnecting' }, ...pick(400, 401, 403, 404, 429, 503) },
    },
    {
      method: 'get', path: '/api/ai/stream', tags: ['Streams'], summary: 'Server-Sent Events for several books, or every book',
      description: 'With `books`: up to MAX_BOOKS_PER_STREAM books, event ids the versions joined by `.`. Without: every book the caller may read (no event id).',
      security: sseAuth,
      request: {
        query: z.object({ books: z.string().optional().meta({ description: 'bookIds, comma-separated' }), ...streamQuery }),
        headers: lastEventIdHeader,
      },
      responses: { 200: sse('the stream'), 204: { description: 'the client already has every final state' }, ...pick(400, 401, 403, 404, 429, 503) },
    },
    {
      method: 'get', path: WEBSOCKET_PATH, tags: ['Streams'], summary: 'WebSocket: the same updates over one connection',
      description:
        'Upgrade with `Upgrade: websocket`. Client messages: `WsClientMessage`; server messages: `WsServerMessage` (JSON text frames). ' +
        'Closed with 4401 when the token expires without a refresh, 4429 when the client fell too far behind on live text (resume with `textFrom`), 1012 on shutdown. Browser pages of other origins than the server\'s and CORS_ORIGINS get 403 `origin_not_allowed`.',
      security: read('progress:read'),
      'x-client-messages': { $ref: '#/components/schemas/WsClientMessage' },
      'x-server-messages': { $ref: '#/components/schemas/WsServerMessage' },
      responses: {
        101: { description: 'Switching Protocols: the WebSocket' },
        426: { description: '`upgrade_required`: a plain GET (a proxy dropped Upgrade)', headers: { Upgrade: { schema: { type: 'string' } } }, content: errorJson },
        ...pick(401, 403, 429, 503),
      },
    } as RouteConfig,
    {
      method: 'post', path: '/api/books', tags: ['Books'], summary: 'Start a demo generation', security: write('books:write'),
      request: { body: { required: true, content: { 'application/json': { schema: BookRequestDoc } } } },
      responses: {
        201: ok('its first state is published: poll or watch it', api.BookStartedSchema, { Location: { description: 'the book in the books API', schema: { type: 'string' } } }),
        ...pick(400, 401, 403, 413, 503),
      },
    },
    {
      method: 'get', path: '/api/books', tags: ['Books'], summary: "The caller's tenant's books, newest first", security: read('progress:read'),
      request: { query: ListQuerySchema },
      responses: { 200: ok('the books', z.array(api.BookSummarySchema)), ...pick(400, 401, 503) },
    },
    {
      method: 'get', path: '/api/books/{bookId}', tags: ['Books'], summary: 'A book with its saved chapters', security: read('progress:read'),
      request: { params: bookParams }, responses: { 200: ok('the book', api.BookDetailSchema), ...pick(400, 401, 404, 503) },
    },
    {
      method: 'get', path: '/api/books/{bookId}/timeline', tags: ['Books'], summary: "The book's latest recorded run", security: read('progress:read'),
      request: { params: bookParams }, responses: { 200: ok('steps and chapters with their times', api.TimelineSchema), ...pick(400, 401, 404, 503) },
    },
    {
      method: 'get', path: '/api/analytics', tags: ['Analytics'], summary: 'Runs, durations, throughput and ETA accuracy of a window (the caller\'s tenant; admin: all or one)', security: read('progress:read'),
      request: {
        query: z.object({
          since: z.string().optional().meta({ description: 'epoch ms or ISO 8601; default until − 24 h' }),
          until: z.string().optional().meta({ description: 'epoch ms or ISO 8601; default now; at most 366 days after since' }),
          tenant: z.string().optional().meta({ description: 'admin only: one tenant' }),
        }),
      },
      responses: { 200: ok('the figures', api.AnalyticsSchema), ...pick(400, 401, 404, 503) },
    },
    {
      method: 'get', path: '/api/books/{bookId}/chapters/{n}', tags: ['Live text'], summary: "One chapter's text from a byte offset", security: read('progress:read'),
      request: {
        params: bookParams.extend({ n: ChapterQuerySchema.shape.n }),
        query: z.object({ from: ChapterQuerySchema.shape.from }),
        headers: z.object({ 'if-none-match': z.string().optional() }),
      },
      responses: { 200: ok('the chapter', api.ChapterTextSchema, etag), 304: { description: 'nothing changed', headers: etag }, ...pick(400, 401, 404, 503) },
    },
    {
      method: 'post', path: '/api/books/{bookId}/cancel', tags: ['Books'], summary: 'Stop a queued or running book', security: read('books:write'),
      request: { params: bookParams },
      responses: {
        200: ok('its final state: ERROR with `error: "cancelled"`', BookProgressSchema),
        202: ok('cancel taken; the final state lands once the backend answers (null: the state could not be read in time)', BookProgressSchema.nullable()),
        ...pick(400, 401, 403, 404, 409, 503),
      },
    },
    {
      method: 'post', path: '/api/books/{bookId}/retry', tags: ['Books'], summary: 'Queue an ERROR book again', security: read('books:write'),
      request: { params: bookParams }, responses: { 202: ok('its new state', BookProgressSchema), ...pick(400, 401, 403, 404, 409, 503) },
    },
  ];
}

const DESCRIPTION = [
  'Real-time progress of long-running jobs (AI book generation): poll, Server-Sent Events, WebSocket, publish.',
  'Every answer is JSON `{ "success": true, "data": … }`, or `{ "success": false, "error": { "code", "message", "details"? } }` (schema `Error`).',
  'With no AUTH_* setting the server runs open: no credential is needed (writes then need PUBLISH_TOKEN when it is set).',
  'With authentication on, a JWT comes as `Authorization: Bearer`, the `booksai_token` cookie or `?access_token=` (the scopes each operation needs are listed in its security).',
  'The SSE and WebSocket message formats are the schemas `SseEvent`, `WsClientMessage` and `WsServerMessage`.',
].join('\n\n');

/** The document; `basePath` (BASE_PATH) is its server URL, relative to the host that serves it. */
export function openApiDocument(basePath = ''): Record<string, unknown> {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: `a user's JWT (HS256 or JWKS): sub, exp, optional tenant, scope (${SCOPES.join(', ')}), books` });
  registry.registerComponent('securitySchemes', 'cookieAuth', { type: 'apiKey', in: 'cookie', name: 'booksai_token', description: 'the same JWT, set by the host app' });
  registry.registerComponent('securitySchemes', 'queryToken', { type: 'apiKey', in: 'query', name: 'access_token', description: 'the same JWT, for EventSource and WebSocket clients that cannot set headers (never logged)' });
  registry.registerComponent('securitySchemes', 'publishToken', { type: 'http', scheme: 'bearer', description: 'PUBLISH_TOKEN, a service credential: writes only, for the tenant in X-Tenant' });
  registry.registerComponent('securitySchemes', 'tenantHeader', { type: 'apiKey', in: 'header', name: 'X-Tenant', description: 'the tenant a PUBLISH_TOKEN writes for (authentication on)' });
  for (const route of routes()) registry.registerPath(route);
  // The WebSocket's messages travel in no HTTP body: listed as components of their own.
  const messages = [WsClientMessageDoc, api.WsServerMessageSchema].map((schema) => ({ type: 'schema' as const, schema }));
  const document = new OpenApiGeneratorV31([...registry.definitions, ...messages]).generateDocument({
    openapi: '3.1.0',
    info: { title: 'booksai-progress', version: '0.1.0', description: DESCRIPTION },
    servers: [{ url: basePath === '' ? '/' : basePath }],
    security: read('progress:read'),
  });
  return document as unknown as Record<string, unknown>;
}
