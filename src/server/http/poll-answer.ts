import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Source } from '../delivery/newest-state.js';
import { PRIVATE_HEADERS } from './auth.js';

/** The version an If-None-Match of ours (`"12"`) names, or null for anything else. */
export function versionOfEtag(header: string | string[] | undefined): number | null {
  const match = typeof header === 'string' ? /^"(\d{1,15})"$/.exec(header.trim()) : null;
  return match ? Number(match[1]) : null;
}

/**
 * Writes the poll endpoint's answer: 200 with `body()` (`{ success: true, data: state }`), or
 * 304 when the client's If-None-Match holds the current version or a newer one. A process may
 * know an older version than its client (its fallback, Postgres, lags Redis; its copy missed
 * updates while it was frozen): answering that would move the client's version backwards, so
 * the client keeps what it holds. Called only once the caller may read the book, so a 304
 * never tells anyone else that it exists.
 */
export function sendProgress(req: IncomingMessage, res: ServerResponse, version: number, source: Source, body: () => Buffer): void {
  const held = versionOfEtag(req.headers['if-none-match']);
  if (held !== null && held >= version) {
    res.writeHead(304, { ETag: `"${held}"`, ...PRIVATE_HEADERS, 'X-Progress-Source': source }).end();
    return;
  }
  const headers: OutgoingHttpHeaders = { ETag: `"${version}"`, ...PRIVATE_HEADERS, 'X-Progress-Source': source };
  const json = body();
  headers['Content-Type'] = 'application/json';
  headers['Content-Length'] = json.length;
  res.writeHead(200, headers).end(json);
}
