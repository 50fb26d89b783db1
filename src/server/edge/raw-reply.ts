import { STATUS_CODES } from 'node:http';
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Refusal } from '../../refusal.js';

/** Answers a request refused before Hono sees it with the API's JSON error. */
export function replyRefusal(res: ServerResponse, refusal: Refusal): void {
  const body = JSON.stringify(refusal.body);
  res.writeHead(refusal.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...refusal.headers }).end(body);
}

/**
 * Answers on a bare socket, where no response object exists (a refused WebSocket upgrade, a
 * request Node's parser refused), then closes the connection.
 */
export function endWithRefusal(socket: Duplex, refusal: Refusal, extraHeaders: ReadonlyArray<readonly [string, string]> = []): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(refusal.body);
  let head = `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  for (const [name, value] of [...extraHeaders, ...Object.entries(refusal.headers)]) head += `${name}: ${value}\r\n`;
  socket.end(`${head}Connection: close\r\n\r\n${body}`);
}
