import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

/**
 * A TCP proxy that adds latency to every chunk, both ways, keeping their order: a slow network
 * path between one server instance and a backend. `delayMs` 0 forwards at once.
 */
export class DelayProxy {
  delayMs = 0;
  readonly port: number;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  private constructor(server: Server) {
    this.#server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  static async start(target: { host: string; port: number }): Promise<DelayProxy> {
    let proxy: DelayProxy | null = null;
    const server = createServer((client) => (proxy ? proxy.#accept(client, target) : client.destroy()));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new DelayProxy(server);
    return proxy;
  }

  /** `url` pointed at this proxy. */
  url(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(this.port);
    return parsed.toString();
  }

  #accept(client: Socket, target: { host: string; port: number }): void {
    const upstream = connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      this.#sockets.add(socket);
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      socket.on('close', () => {
        this.#sockets.delete(socket);
        (socket === client ? upstream : client).destroy();
      });
    }
    this.#pipe(client, upstream);
    this.#pipe(upstream, client);
  }

  #pipe(from: Socket, to: Socket): void {
    // Each chunk leaves no earlier than the one before it, so a change of delay cannot reorder bytes.
    let due = 0;
    from.on('data', (chunk: Buffer) => {
      if (this.delayMs === 0 && due <= Date.now()) {
        to.write(chunk);
        return;
      }
      due = Math.max(Date.now() + this.delayMs, due);
      setTimeout(() => to.destroyed || to.write(chunk), due - Date.now());
    });
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
