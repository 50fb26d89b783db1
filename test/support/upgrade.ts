import { WebSocket } from 'ws';
import { withTimeout } from './wait.js';

/**
 * Opens a WebSocket to `url` (with `origin` as its Origin header when given): resolves with the
 * open socket, or with the HTTP status the server refused the upgrade with.
 */
export async function tryWebSocket(url: string, origin?: string): Promise<{ ws: WebSocket; status: 101 } | { status: number; body: string }> {
  const ws = new WebSocket(url, origin === undefined ? {} : { origin });
  const outcome = new Promise<{ ws: WebSocket; status: 101 } | { status: number; body: string }>((resolve, reject) => {
    ws.once('open', () => resolve({ ws, status: 101 }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', reject);
  });
  return withTimeout(outcome, 5_000, `the WebSocket upgrade at ${url}`);
}
