import type { HttpBindings } from '@hono/node-server';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ProgressUpdate } from '../progress/schema.js';
import type { ProgressTracker } from '../progress/tracker.js';
import { ApiError } from './errors.js';
import type { ReadLatest } from './latest.js';
import { parseBookId, readJson } from './request.js';

export interface ProgressRoutesOptions {
  tracker: ProgressTracker;
  readLatest: ReadLatest;
  maxBodyBytes: number;
}

/** `/api/ai/progress/:bookId`: poll and publish. */
export function progressRoutes(options: ProgressRoutesOptions) {
  const { tracker, readLatest } = options;
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

  return app;
}
