import type { ServerResponse } from 'node:http';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { isTerminal } from '../progress/schema.js';
import type { ProgressUpdate } from '../progress/schema.js';
import type { ProgressTracker } from '../progress/tracker.js';
import { ApiError } from './errors.js';
import type { Hub } from './hub.js';
import type { ReadLatest } from './latest.js';
import { parseBookId, readJson } from './request.js';
import { ProgressStream } from './stream.js';
import type { StreamRegistry } from './stream.js';

export interface ProgressRoutesOptions {
  tracker: ProgressTracker;
  hub: Hub;
  readLatest: ReadLatest;
  streams: StreamRegistry;
  maxBodyBytes: number;
  sseRetryMs: number;
}

/** Version numbers travel as decimal integers; anything else is a client error. */
const MAX_LAST_EVENT_ID = Number.MAX_SAFE_INTEGER;

/** `/api/ai/progress/:bookId`: poll, publish, and the SSE stream of one book. */
export function progressRoutes(options: ProgressRoutesOptions) {
  const { tracker, hub, readLatest, streams } = options;
  const app = new Hono<{ Bindings: HttpBindings }>();

  app.get('/:bookId', async (c) => {
    const bookId = parseBookId(c);
    const found = await readLatest(bookId);
    if (!found) throw new ApiError(404, 'not_found', `no progress for book ${bookId}`);
    const etag = `"${found.state.version}"`;
    c.header('ETag', etag);
    c.header('Cache-Control', 'no-cache');
    c.header('X-Progress-Source', found.source);
    if (c.req.header('if-none-match') === etag) return c.body(null, 304);
    return c.json({ success: true, data: found.state });
  });

  app.post('/:bookId', bodyLimit({ maxSize: options.maxBodyBytes }), async (c) => {
    const bookId = parseBookId(c);
    const update = await readJson(c);
    const state = await tracker.updateProgress(bookId, update as ProgressUpdate);
    return c.json({ success: true, data: state });
  });

  app.get('/:bookId/stream', async (c) => {
    const bookId = parseBookId(c);
    const lastEventId = parseLastEventId(c.req.header('last-event-id') ?? c.req.query('lastEventId'));
    const res = c.env.outgoing as ServerResponse;
    const stream = new ProgressStream(res, lastEventId, () => {
      hub.leave(bookId, stream);
      streams.delete(stream);
    });
    const latest = await hub.join(bookId, stream);
    // A client that already has the final state must stop reconnecting: 204 tells EventSource so.
    if (latest && isTerminal(latest.state.status) && latest.state.version <= lastEventId) {
      hub.leave(bookId, stream);
      return c.body(null, 204);
    }
    if (stream.ended) return RESPONSE_ALREADY_SENT;
    streams.add(stream);
    stream.open(options.sseRetryMs);
    if (latest) stream.deliver(latest);
    return RESPONSE_ALREADY_SENT;
  });

  return app;
}

function parseLastEventId(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 0;
  const value = /^\d{1,16}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value) || value > MAX_LAST_EVENT_ID) {
    throw new ApiError(400, 'invalid_last_event_id', 'Last-Event-ID must be a non-negative integer version');
  }
  return value;
}
