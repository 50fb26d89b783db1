import type { ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { ProgressUpdate } from '../progress/schema.js';
import type { ProgressTracker } from '../progress/tracker.js';
import { mayRead, writerOf } from '../auth/caller.js';
import { PRIVATE_HEADERS, callerWith } from './auth.js';
import type { AppEnv } from './auth.js';
import { ApiError } from './errors.js';
import type { Hub } from './hub.js';
import type { ReadLatest } from './latest.js';
import { sendProgress } from './poll.js';
import { parseBookId, readJson } from './request.js';

export interface ProgressRoutesOptions {
  tracker: ProgressTracker;
  hub: Hub;
  readLatest: ReadLatest;
  maxBodyBytes: number;
}

/** `/api/ai/progress/:bookId`: poll and publish. */
export function progressRoutes(options: ProgressRoutesOptions) {
  const { tracker, hub, readLatest } = options;
  const app = new Hono<AppEnv>();

  // Polls of books this process follows are answered by pollFastPath before they get here.
  app.get('/:bookId', async (c) => {
    const caller = callerWith(c, 'progress:read');
    const bookId = parseBookId(c);
    const found = await readLatest(bookId);
    // Another tenant's book is answered exactly as a missing one.
    if (!found || !mayRead(caller, bookId, found.state.tenant)) throw new ApiError(404, 'not_found', `no progress for book ${bookId}`);
    hub.follow(bookId); // so the next poll takes the fast path
    if (c.req.method === 'HEAD') {
      // Hono answers HEAD by running this handler and copying its Response: give it one.
      const etag = `"${found.state.version}"`;
      const status = c.req.header('if-none-match') === etag ? 304 : 200;
      return c.body(null, status, { ETag: etag, ...PRIVATE_HEADERS, 'X-Progress-Source': found.source });
    }
    const body = () => Buffer.from(JSON.stringify({ success: true, data: found.state }));
    sendProgress(c.env.incoming, c.env.outgoing as ServerResponse, found.state.version, found.source, body);
    return RESPONSE_ALREADY_SENT;
  });

  app.post('/:bookId', bodyLimit({ maxSize: options.maxBodyBytes }), async (c) => {
    const caller = callerWith(c, 'progress:write');
    const bookId = parseBookId(c);
    const update = await readJson(c);
    const state = await tracker.updateProgress(bookId, update as ProgressUpdate, { writer: writerOf(caller) });
    return c.json({ success: true, data: state });
  });

  return app;
}
