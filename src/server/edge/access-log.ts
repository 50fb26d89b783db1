import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';

/**
 * The address of the client that sent `req`. With `trustProxy` (TRUST_PROXY, one proxy in front
 * that appends to X-Forwarded-For, as nginx's `$proxy_add_x_forwarded_for` does) it is the last
 * address of that header: the one the proxy saw. Earlier entries came from the client and can
 * be anything, so they are never used.
 */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const header = req.headers['x-forwarded-for'];
    const forwarded = (Array.isArray(header) ? header.join(',') : header)?.split(',').at(-1)?.trim();
    if (forwarded) return forwarded;
  }
  return req.socket.remoteAddress ?? 'unknown';
}

/** Logs each request at debug level once answered (client, method, path, status); nothing when debug is off. */
export function accessLog(log: Logger, trustProxy: boolean): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (!log.isLevelEnabled('debug')) return;
    const client = clientAddress(req, trustProxy);
    const method = req.method;
    const path = (req.url ?? '').split('?')[0];
    res.once('finish', () => log.debug({ client, method, path, status: res.statusCode }, 'request'));
  };
}
