/** How every baseline starts: listen on HOST:PORT, announce it, exit on SIGTERM. */
import type { Server } from 'node:http';
import { emit } from '../support/commands.js';

export function serve(server: Server, onStop: () => void = () => {}): void {
  const port = Number(process.env.PORT ?? 0);
  const host = process.env.HOST ?? '127.0.0.1';
  // Same as Node's default, stated: idle SSE and WebSocket clients must not be cut by a timeout.
  server.requestTimeout = 0;
  server.listen(port, host, () => {
    const address = server.address();
    emit({ evt: 'listening', port: typeof address === 'object' && address ? address.port : port });
  });
  process.on('SIGTERM', () => {
    onStop();
    process.exit(0);
  });
}
