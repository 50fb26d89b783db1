import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

interface Pair {
  client: Socket;
  upstream: Socket;
  resetAtQuery: boolean;
}

/**
 * A TCP proxy in front of Postgres, for outages without touching the shared server: `cut()`
 * resets every open connection and every new one until `heal()`, as a network partition or a
 * restarting database does. Point DATABASE_URL at `url(databaseUrl)`.
 */
export class PgProxy {
  readonly port: number;
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #pairs = new Set<Pair>();
  #cut = false;
  /** While true, each new connection is reset when it sends its first query (after the startup exchange). */
  resetFirstQuery = false;
  /** Connections accepted (and forwarded) so far, to show the service really came through here. */
  accepted = 0;
  /** Connections reset while cut. */
  refused = 0;

  private constructor(server: Server, target: { host: string; port: number }) {
    this.#server = server;
    this.#target = target;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Listens on a free port of 127.0.0.1 and forwards to the host and port of `databaseUrl`. */
  static async start(databaseUrl: string): Promise<PgProxy> {
    const url = new URL(databaseUrl);
    const target = { host: url.hostname, port: Number(url.port || 5432) };
    let proxy: PgProxy | null = null;
    const server = createServer((socket) => {
      if (proxy) proxy.#accept(socket);
      else socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    proxy = new PgProxy(server, target);
    return proxy;
  }

  /** `databaseUrl` with its host and port replaced by the proxy's. */
  url(databaseUrl: string): string {
    const url = new URL(databaseUrl);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString();
  }

  get isCut(): boolean {
    return this.#cut;
  }

  /** Open client connections. */
  get connections(): number {
    return this.#pairs.size;
  }

  /** Resets every open connection and refuses (resets) new ones until heal(). */
  cut(): void {
    this.#cut = true;
    for (const pair of [...this.#pairs]) this.#drop(pair);
  }

  heal(): void {
    this.#cut = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    if (this.#cut) {
      this.refused++;
      client.resetAndDestroy();
      return;
    }
    this.accepted++;
    const upstream = connect(this.#target.port, this.#target.host);
    const pair: Pair = { client, upstream, resetAtQuery: this.resetFirstQuery };
    this.#pairs.add(pair);
    client.on('data', (chunk: Buffer) => {
      // Frontend messages after startup begin with their type: 'P' (Parse) or 'Q' (Query) starts a query.
      const query = chunk[0] === 0x50 || chunk[0] === 0x51;
      if (query && pair.resetAtQuery) {
        this.#drop(pair);
        return;
      }
      upstream.write(chunk);
    });
    upstream.pipe(client);
    const drop = () => this.#drop(pair);
    for (const socket of [client, upstream]) {
      socket.on('error', drop);
      socket.on('close', drop);
    }
  }

  #drop(pair: Pair): void {
    if (!this.#pairs.delete(pair)) return;
    if (!pair.client.destroyed) pair.client.resetAndDestroy();
    pair.upstream.destroy();
  }
}
