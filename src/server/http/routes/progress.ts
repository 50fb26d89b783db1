import type { ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import { z } from 'zod';
import { bodyLimit } from 'hono/body-limit';
import { mayRead, writerOf } from '../../../auth/caller.js';
import type { ProgressUpdate } from '../../../progress/schema.js';
import type { ProgressTracker } from '../../../progress/tracker.js';
import { Refusal } from '../../../refusal.js';
import type { BookStore } from '../../../store/books.js';
import type { Hub } from '../../delivery/hub.js';
import type { FindNewest } from '../../delivery/newest-state.js';
import { PRIVATE_HEADERS, callerWith } from '../auth.js';
import type { AppEnv } from '../auth.js';
import { parseBookId, readJson } from '../params.js';
import { sendProgress, versionOfEtag } from '../poll-answer.js';

export interface ProgressRoutesOptions {
  tracker: ProgressTracker;
  hub: Hub;
  findNewest: FindNewest;
  maxBodyBytes: number;
  books: BookStore;
}

/** A publish body's optional `title`: the book's name in Postgres, not part of the state. */
export const TitleSchema = z.string().trim().min(1).max(200);

/**
 * A publish body's optional `title` (the book's name in Postgres, not part of the state), apart
 * from the update the tracker checks; a title that is not 1-200 characters is a 400.
 */
function splitTitle(body: unknown): { title: string | undefined; update: unknown } {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !('title' in body)) return { title: undefined, update: body };
  const { title, ...update } = body as Record<string, unknown>;
  const parsed = TitleSchema.safeParse(title);
  if (!parsed.success) throw new Refusal(400, 'invalid_progress', 'title: must be a string of 1 to 200 characters');
  return { title: parsed.data, update };
}

/** `/api/ai/progress/:bookId`: poll and publish. */
export function progressRoutes(options: ProgressRoutesOptions) {
  const { tracker, hub, findNewest, books } = options;
  const app = new Hono<AppEnv>();

  // Polls of books this process follows are answered by the edge's pollFastPath before they get here.
  app.get('/:bookId', async (c) => {
    const caller = callerWith(c, 'progress:read');
    const bookId = parseBookId(c);
    const found = await findNewest(bookId);
    // Another tenant's book is answered exactly as a missing one.
    if (!found || !mayRead(caller, bookId, found.state.tenant)) throw new Refusal(404, 'not_found', `no progress for book ${bookId}`);
    hub.follow(bookId); // so the next poll takes the fast path
    if (c.req.method === 'HEAD') {
      // Hono answers HEAD by running this handler and copying its Response: give it one.
      const etag = `"${found.state.version}"`;
      const held = versionOfEtag(c.req.header('if-none-match'));
      const notNewer = held !== null && held >= found.state.version;
      return c.body(null, notNewer ? 304 : 200, { ETag: notNewer ? `"${held}"` : etag, ...PRIVATE_HEADERS, 'X-Progress-Source': found.source });
    }
    const body = () => Buffer.from(JSON.stringify({ success: true, data: found.state }));
    sendProgress(c.env.incoming, c.env.outgoing as ServerResponse, found.state.version, found.source, body);
    return RESPONSE_ALREADY_SENT;
  });

  app.post('/:bookId', bodyLimit({ maxSize: options.maxBodyBytes }), async (c) => {
    const caller = callerWith(c, 'progress:write');
    const bookId = parseBookId(c);
    const { title, update } = splitTitle(await readJson(c));
    const state = await tracker.updateProgress(bookId, update as ProgressUpdate, { writer: writerOf(caller) });
    // The tracker refused a book of another tenant: the state's tenant is the book's.
    if (title !== undefined) await books.setTitle(bookId, title, state.tenant ?? null);
    return c.json({ success: true, data: state });
  });

  return app;
}
