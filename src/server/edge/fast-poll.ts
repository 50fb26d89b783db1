import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticator } from '../../auth/authenticator.js';
import { hasScope, mayRead } from '../../auth/caller.js';
import { credentialsOf } from '../../auth/credentials.js';
import type { Hub } from '../delivery/hub.js';
import type { Source } from '../delivery/newest-state.js';
import { sendProgress } from '../http/poll-answer.js';

const POLL_PATH = /^\/api\/ai\/progress\/([A-Za-z0-9_-]{1,128})(?:\?(.*))?$/;

/**
 * The legacy pollers' hottest case, answered before the framework: a GET for a book this
 * process follows live, from the body serialized once per version, by a caller whose token was
 * verified before and who may read the book. Returns false for anything else (other routes,
 * HEAD, unknown or unfollowed books, a token not seen yet, a book the caller may not read),
 * which the Hono app then serves, or refuses, in full.
 */
export function pollFastPath(hub: Hub, source: Source, auth: Authenticator): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'GET') return false;
    const match = POLL_PATH.exec(req.url ?? '');
    if (!match) return false;
    const bookId = match[1] as string;
    const query = match[2] === undefined ? null : new URLSearchParams(match[2]);
    const caller = auth.cachedCaller(credentialsOf(req.headers, query));
    if (caller === undefined || !hasScope(caller, 'progress:read')) return false;
    const cached = hub.polled(bookId);
    if (!cached || !mayRead(caller, bookId, cached.tenant)) return false;
    hub.follow(bookId);
    sendProgress(req, res, cached.version, source, () => cached.pollBody);
    return true;
  };
}
