import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Source } from '../delivery/newest-state.js';
import { PRIVATE_HEADERS } from './auth.js';

/**
 * Writes the poll endpoint's answer: 200 with `body()` (`{ success: true, data: state }`), or
 * 304 when the client's If-None-Match holds the current version. Called only once the caller
 * may read the book, so a 304 never tells anyone else that it exists.
 */
export function sendProgress(req: IncomingMessage, res: ServerResponse, version: number, source: Source, body: () => Buffer): void {
  const etag = `"${version}"`;
  const headers: OutgoingHttpHeaders = { ETag: etag, ...PRIVATE_HEADERS, 'X-Progress-Source': source };
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers).end();
    return;
  }
  const json = body();
  headers['Content-Type'] = 'application/json';
  headers['Content-Length'] = json.length;
  res.writeHead(200, headers).end(json);
}
