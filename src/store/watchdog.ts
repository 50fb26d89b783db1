import { Socket } from 'node:net';

/** What postgres.js hands its `socket` option: every host and port of the URL, or a Unix socket path. */
export interface SocketTarget {
  host: string[];
  port: number[];
  path?: string | false;
}

/**
 * Makes the sockets of a postgres.js pool and closes those that stopped answering. Without it,
 * a connection whose network drops packets without a reset holds its query until TCP gives up,
 * many minutes later, and the pool runs dry one connection at a time.
 *
 * When a call missed its deadline (`missed()`), every connection that neither sent nor received
 * anything for `silenceMs` is closed: with `statement_timeout` shorter than that, a live server
 * would have answered whatever it was last sent (rows, or the timeout error), so such a
 * connection is either stalled or idle, and an idle one is cheap to open again. postgres.js fails
 * what was in flight with the close and opens a new connection for the next query. Traffic is
 * seen through byte counts (swept every silenceMs / 4), not the protocol, so this works under
 * TLS too.
 */
export class SocketWatchdog {
  readonly #silenceMs: number;
  readonly #sockets = new Map<Socket, { read: number; written: number; lastActiveAt: number }>();
  readonly #sweep: NodeJS.Timeout;
  #next = 0;
  #missedAt = -Infinity;
  /** Connections closed so far. */
  closed = 0;

  constructor(silenceMs: number) {
    this.#silenceMs = silenceMs;
    this.#sweep = setInterval(() => this.#check(Date.now()), Math.max(25, Math.floor(silenceMs / 4)));
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
    this.#sockets.set(socket, { read: 0, written: 0, lastActiveAt: Date.now() });
    socket.once('close', () => this.#sockets.delete(socket));
    return socket;
  };

  /** A call got no answer within its deadline: look for stalled connections for the next while. */
  missed(): void {
    this.#missedAt = Date.now();
  }

  close(): void {
    clearInterval(this.#sweep);
  }

  #check(now: number): void {
    // Connections that were silent for silenceMs after the miss; one more period covers that.
    const looking = now - this.#missedAt < 2 * this.#silenceMs;
    for (const [socket, seen] of this.#sockets) {
      if (socket.bytesRead !== seen.read || socket.bytesWritten !== seen.written) {
        seen.read = socket.bytesRead;
        seen.written = socket.bytesWritten;
        seen.lastActiveAt = now;
      } else if (looking && now - seen.lastActiveAt >= this.#silenceMs) {
        this.closed++;
        this.#sockets.delete(socket);
        socket.destroy(Object.assign(new Error(`the database sent nothing for ${this.#silenceMs} ms`), { code: 'CONNECTION_STALLED' }));
      }
    }
  }
}
