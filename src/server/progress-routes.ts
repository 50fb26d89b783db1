import type { HttpBindings } from '@hono/node-server';
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
  // from memory with a body serialized once per version; others from Redis, then the database.
  app.get('/:bookId', async (c) => {
    const bookId = parseBookId(c);
    const cached = hub.polled(bookId);
    const found = cached ? { state: cached.state, source: brokerSource } : await readLatest(bookId);
    if (!found) throw new ApiError(404, 'not_found', `no progress for book ${bookId}`);
    const etag = `"${found.state.version}"`;
    const headers = { ETag: etag, 'Cache-Control': 'no-cache', 'X-Progress-Source': found.source };
    if (c.req.header('if-none-match') === etag) return c.body(null, 304, headers);
    const body = cached ? cached.pollBody : JSON.stringify({ success: true, data: found.state });
    return c.body(body, 200, { ...headers, 'Content-Type': 'application/json' });
  });

  app.post('/:bookId', bodyLimit({ maxSize: options.maxBodyBytes }), async (c) => {
    const bookId = parseBookId(c);
    const update = await readJson(c);
    const state = await tracker.updateProgress(bookId, update as ProgressUpdate);
    return c.json({ success: true, data: state });
  });

  return app;
}
