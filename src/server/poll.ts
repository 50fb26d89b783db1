import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Hub } from './hub.js';
import type { Source } from './latest.js';

/**
 * Writes the poll endpoint's answer: 200 with `body()` (`{ success: true, data: state }`), or
 * 304 when the client's If-None-Match holds the current version.
 */
export function sendProgress(req: IncomingMessage, res: ServerResponse, version: number, source: Source, body: () => Buffer): void {
  const etag = `"${version}"`;
  const headers: OutgoingHttpHeaders = { ETag: etag, 'Cache-Control': 'no-cache', 'X-Progress-Source': source };
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers).end();
    return;
  }
  const json = body();
  headers['Content-Type'] = 'application/json';
  headers['Content-Length'] = json.length;
  res.writeHead(200, headers).end(json);
}

const POLL_PATH = /^\/api\/ai\/progress\/([A-Za-z0-9_-]{1,128})$/;

/**
 * The legacy pollers' hottest case, answered before the framework: a GET for a book this
 * process follows live, from the body serialized once per version. Returns false for anything
 * else (other routes, HEAD, unknown or unfollowed books), which the Hono app then serves.
 */
export function pollFastPath(hub: Hub, source: Source): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'GET') return false;
    const match = POLL_PATH.exec(req.url ?? '');
    if (!match) return false;
    const cached = hub.polled(match[1] as string);
    if (!cached) return false;
    sendProgress(req, res, cached.version, source, () => cached.pollBody);
    return true;
  };
}
