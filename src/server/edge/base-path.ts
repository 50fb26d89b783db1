import type { IncomingMessage, ServerResponse } from 'node:http';
import { Refusal } from '../../refusal.js';
import { replyRefusal } from './raw-reply.js';

/**
 * The request's URL with `basePath` (BASE_PATH, e.g. `/progress`) taken off, as the routes know
 * it (`/api/ai/stream?books=a`); null for a URL outside it. '' leaves every URL as it is.
 */
export function stripBasePath(url: string, basePath: string): string | null {
  if (basePath === '') return url;
  if (!url.startsWith(basePath)) return null;
  const rest = url.slice(basePath.length);
  if (rest === '' || rest.startsWith('?')) return `/${rest}`;
  return rest.startsWith('/') ? rest : null;
}

/**
 * Serves the whole server under `basePath`: strips it from `req.url` before any route sees it
 * (routes, the fast poll path and the WebSocket path stay written from `/`), answers 404 for a
 * URL outside it, and redirects `GET /progress` to `/progress/` so the pages' relative links
 * resolve under the prefix. Returns true when it answered the request itself.
 */
export function mountAt(basePath: string): (req: IncomingMessage, res: ServerResponse) => boolean {
  if (basePath === '') return () => false;
  return (req, res) => {
    const url = req.url ?? '/';
    const inner = stripBasePath(url, basePath);
    if (inner === null) {
      replyRefusal(res, new Refusal(404, 'not_found', `this server lives under ${basePath}/`));
      return true;
    }
    if (url === basePath || url.startsWith(`${basePath}?`)) {
      res.writeHead(308, { Location: `${basePath}/${url.slice(basePath.length)}`, 'Content-Length': 0 }).end();
      return true;
    }
    req.url = inner;
    return false;
  };
}
