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
    // One queue per direction, drained in order by one timer at a time: a TCP stream never
    // reorders, and timers of different durations due at the same ms may fire in any order.
    const queue: Array<{ due: number; chunk: Buffer }> = [];
    let timer: NodeJS.Timeout | null = null;
    const drain = () => {
      timer = null;
      while (queue.length > 0 && queue[0]!.due <= Date.now()) {
        const { chunk } = queue.shift()!;
        if (!to.destroyed) to.write(chunk);
      }
      if (queue.length > 0) timer = setTimeout(drain, queue[0]!.due - Date.now());
    };
    from.on('data', (chunk: Buffer) => {
      if (this.delayMs === 0 && queue.length === 0) {
        to.write(chunk);
        return;
      }
      // Each chunk leaves no earlier than the one before it, so a change of delay cannot reorder bytes.
      const due = Math.max(Date.now() + this.delayMs, queue.at(-1)?.due ?? 0);
      queue.push({ due, chunk });
      if (timer === null) timer = setTimeout(drain, Math.max(0, queue[0]!.due - Date.now()));
    });
    from.on('close', () => {
      if (timer) clearTimeout(timer);
    });
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
