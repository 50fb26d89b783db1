import { Socket } from 'node:net';

/** What postgres.js hands its `socket` option: every host and port of the URL, or a Unix socket path. */
export interface SocketTarget {
  host: string[];
  port: number[];
  path?: string | false;
}

/**
 * Makes the sockets of a postgres.js pool and destroys any that stops answering: one that wrote
 * (a query, the start-up exchange) and then received nothing for `limitMs`. postgres.js then
 * fails what was in flight with CONNECTION_CLOSED and opens a new connection for the next query;
 * without this, a connection whose network drops packets without a reset would hold its queries
 * until TCP gives up, many minutes later, and the pool would run dry one connection at a time.
 *
 * It watches byte counts (swept every limitMs / 4), not the protocol, so it works under TLS too.
 * An idle connection (its last traffic was a reply) is never touched.
 */
export class SocketWatchdog {
  readonly #limitMs: number;
  readonly #sockets = new Map<Socket, { read: number; written: number; waitingSince: number | null }>();
  readonly #sweep: NodeJS.Timeout;
  #next = 0;
  /** Connections destroyed so far, for tests and metrics. */
  destroyed = 0;

  constructor(limitMs: number) {
    this.#limitMs = limitMs;
    this.#sweep = setInterval(() => this.#check(Date.now()), Math.max(25, Math.floor(limitMs / 4)));
    this.#sweep.unref();
  }

  /** postgres.js's `socket` option: a connecting socket to the next host, watched until it closes. */
  readonly socket = (target: SocketTarget): Socket => {
    const socket = new Socket();
    if (target.path) socket.connect(target.path);
    else {
      const i = this.#next++ % target.host.length;
      socket.connect(target.port[i] ?? target.port[0] ?? 5432, target.host[i] ?? 'localhost');
    }
    this.#sockets.set(socket, { read: 0, written: 0, waitingSince: null });
    socket.once('close', () => this.#sockets.delete(socket));
    return socket;
  };

  close(): void {
    clearInterval(this.#sweep);
  }

  #check(now: number): void {
    for (const [socket, seen] of this.#sockets) {
      const { bytesRead, bytesWritten } = socket;
      if (bytesRead !== seen.read) {
        seen.read = bytesRead;
        seen.written = bytesWritten;
        seen.waitingSince = null;
      } else if (bytesWritten !== seen.written) {
        // Written since the last reply: the clock runs from the first sweep that saw it.
        seen.written = bytesWritten;
        seen.waitingSince ??= now;
      }
      if (seen.waitingSince !== null && now - seen.waitingSince >= this.#limitMs) {
        this.destroyed++;
        this.#sockets.delete(socket);
        socket.destroy(Object.assign(new Error(`the database sent nothing for ${this.#limitMs} ms`), { code: 'CONNECTION_STALLED' }));
      }
    }
  }
}
