import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

interface Pair {
  client: Socket;
  upstream: Socket;
  /** This connection is reset when its client sends its first query (see `resetFirstQuery`). */
  resetAtQuery: boolean;
  /** Bytes held while swallowing, per direction, in order. */
  toUpstream: Buffer[];
  toClient: Buffer[];
}

/**
 * A TCP proxy in front of Redis or Postgres, for faults without touching the shared servers.
 * Outages: `cut()` resets every open connection and every new one until `heal()`, as a network
 * partition or a restarting server does. Gray failures: `swallow()` keeps every connection open
 * (and accepts new ones) but forwards nothing either way, as a network path that drops packets
 * without a reset does; then `deliver()` sends what was held and forwards again (the path
 * healed), or `reset()` resets every connection (it ended in a reset). Point the client at
 * `url(targetUrl)`.
 */
export class FaultProxy {
  readonly port: number;
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #pairs = new Set<Pair>();
  #cut = false;
  #swallowing = false;
  /**
   * Postgres only: while true, each new connection is reset when it sends its first query (a
   * frontend message starting with 'P' or 'Q', after the startup exchange).
   */
  resetFirstQuery = false;
  /** Connections accepted and forwarded so far (not those refused while cut), to show the client really came through here. */
  accepted = 0;
  /** Connections reset on arrival while cut. */
  refused = 0;
  /** Forwarded connections that ended so far (closed by either side, or reset). */
  ended = 0;

  private constructor(server: Server, target: { host: string; port: number }) {
    this.#server = server;
    this.#target = target;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Listens on a free port of 127.0.0.1 and forwards to the host and port of `url` (redis:// or postgres://). */
  static async start(url: string): Promise<FaultProxy> {
    const parsed = new URL(url);
    const target = { host: parsed.hostname, port: Number(parsed.port || (parsed.protocol.startsWith('redis') ? 6379 : 5432)) };
    let proxy: FaultProxy | null = null;
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
    proxy = new FaultProxy(server, target);
    return proxy;
  }

  /** `url` with its host and port replaced by the proxy's. */
  url(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(this.port);
    return parsed.toString();
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
    this.#dropAll();
  }

  /** Accepts and forwards new connections again. */
  heal(): void {
    this.#cut = false;
  }

  /** From now on nothing is forwarded, and no connection is closed. */
  swallow(): void {
    this.#swallowing = true;
  }

  /** Forwards what was held, in order, and everything after it. */
  deliver(): void {
    this.#swallowing = false;
    for (const pair of this.#pairs) {
      for (const chunk of pair.toUpstream.splice(0)) pair.upstream.write(chunk);
      for (const chunk of pair.toClient.splice(0)) pair.client.write(chunk);
    }
  }

  /** Resets every open connection (what was held is lost) and forwards new ones again. */
  reset(): void {
    this.#swallowing = false;
    this.#dropAll();
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
    const pair: Pair = { client, upstream, resetAtQuery: this.resetFirstQuery, toUpstream: [], toClient: [] };
    this.#pairs.add(pair);
    client.on('data', (chunk: Buffer) => {
      // Frontend messages after startup begin with their type: 'P' (Parse) or 'Q' (Query) starts a query.
      if (pair.resetAtQuery && (chunk[0] === 0x50 || chunk[0] === 0x51)) this.#drop(pair);
      else if (this.#swallowing || pair.toUpstream.length > 0) pair.toUpstream.push(chunk);
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (this.#swallowing || pair.toClient.length > 0) pair.toClient.push(chunk);
      else client.write(chunk);
    });
    const drop = () => this.#drop(pair);
    for (const socket of [client, upstream]) {
      socket.on('error', drop);
      socket.on('close', drop);
    }
  }

  #dropAll(): void {
    for (const pair of [...this.#pairs]) this.#drop(pair);
  }

  #drop(pair: Pair): void {
    if (!this.#pairs.delete(pair)) return;
    this.ended++;
    pair.toUpstream.length = 0;
    pair.toClient.length = 0;
    if (!pair.client.destroyed) pair.client.resetAndDestroy();
    if (!pair.upstream.destroyed) pair.upstream.resetAndDestroy();
  }
}
