import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ProgressUpdate } from '../progress/schema.js';
import type { ProgressTracker } from '../progress/tracker.js';
import { ApiError } from './errors.js';
import type { Hub } from './hub.js';
import type { ReadLatest, Source } from './latest.js';
import { parseBookId, readJson } from './request.js';

export interface ProgressRoutesOptions {
  tracker: ProgressTracker;
  hub: Hub;
  readLatest: ReadLatest;
  /** What the poll endpoint reports as the source of a state held in memory. */
  brokerSource: Source;
  maxBodyBytes: number;
}

/** `/api/ai/progress/:bookId`: poll and publish. */
export function progressRoutes(options: ProgressRoutesOptions) {
  const { tracker, hub, readLatest, brokerSource } = options;
  const app = new Hono<{ Bindings: HttpBindings }>();

  // The legacy pollers' endpoint, and the hottest path: a book this process follows is answered
  // from memory with a body serialized once per version, written straight to the Node response
  // (building a Web Response and its Headers cost more than the rest of the request).
  app.get('/:bookId', async (c) => {
    const bookId = parseBookId(c);
    const cached = hub.polled(bookId);
    const found = cached ? { state: cached.state, source: brokerSource } : await readLatest(bookId);
    if (!found) throw new ApiError(404, 'not_found', `no progress for book ${bookId}`);
    const etag = `"${found.state.version}"`;
    const headers: OutgoingHttpHeaders = { ETag: etag, 'Cache-Control': 'no-cache', 'X-Progress-Source': found.source };
    const notModified = c.env.incoming.headers['if-none-match'] === etag;
    // Hono answers HEAD by running this handler and copying its Response: give it one.
    if (c.req.method === 'HEAD') return c.body(null, notModified ? 304 : 200, headers as Record<string, string>);
    const res = c.env.outgoing as ServerResponse;
    if (notModified) {
      res.writeHead(304, headers).end();
      return RESPONSE_ALREADY_SENT;
    }
    const body = cached ? cached.pollBody : JSON.stringify({ success: true, data: found.state });
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = Buffer.byteLength(body);
    res.writeHead(200, headers).end(body);
    return RESPONSE_ALREADY_SENT;
  });

  app.post('/:bookId', bodyLimit({ maxSize: options.maxBodyBytes }), async (c) => {
    const bookId = parseBookId(c);
    const update = await readJson(c);
    const state = await tracker.updateProgress(bookId, update as ProgressUpdate);
    return c.json({ success: true, data: state });
  });

  return app;
}
