/**
 * A counting Postgres proxy on loopback: the server under test connects through it, and it
 * reads the wire protocol both ways to count statements executed (by kind), reads of the
 * `books` table, and rows written (from INSERT/UPDATE command tags). Exact, and independent of
 * when Postgres flushes its own statistics; bytes pass through unchanged.
 */
import { createConnection, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

export interface PgCounts {
  /** Statements executed (simple queries and extended-protocol executions). */
  statements: number;
  /** INSERT ... ON CONFLICT statements. */
  upserts: number;
  /** Other INSERT, UPDATE and DELETE statements. */
  otherWrites: number;
  /** SELECTs that name the books table. */
  bookReads: number;
  /** Rows inserted or updated, from command tags. */
  rowsWritten: number;
}

const SSL_REQUEST = 80_877_103;

export function zeroCounts(): PgCounts {
  return { statements: 0, upserts: 0, otherWrites: 0, bookReads: 0, rowsWritten: 0 };
}

export function diffCounts(after: PgCounts, before: PgCounts): PgCounts {
  const out = zeroCounts();
  for (const key of Object.keys(out) as Array<keyof PgCounts>) out[key] = after[key] - before[key];
  return out;
}

export class PgProxy {
  readonly #counts = zeroCounts();
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  constructor(
    readonly upstreamHost: string,
    readonly upstreamPort: number,
  ) {
    this.#server = createServer((client) => this.#accept(client));
  }

  /** A copy of the counts so far. */
  counts(): PgCounts {
    return { ...this.#counts };
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', () => resolve((this.#server.address() as AddressInfo).port));
    });
  }

  close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    const upstream = createConnection({ host: this.upstreamHost, port: this.upstreamPort });
    this.#sockets.add(client).add(upstream);
    const statements = new Map<string, string>();
    const portals = new Map<string, string>();
    const frontend = new MessageReader(true, (type, body) => this.#onFrontend(type, body, statements, portals));
    const backend = new MessageReader(false, (type, body) => this.#onBackend(type, body));
    frontend.onSslRequest = () => (backend.skipBytes = 1);
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      frontend.feed(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      client.write(chunk);
      backend.feed(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  }

  #onFrontend(type: string, body: Buffer, statements: Map<string, string>, portals: Map<string, string>): void {
    if (type === 'Q') return this.#count(cString(body, 0).text);
    if (type === 'P') {
      const name = cString(body, 0);
      statements.set(name.text, cString(body, name.next).text);
    } else if (type === 'B') {
      const portal = cString(body, 0);
      portals.set(portal.text, cString(body, portal.next).text);
    } else if (type === 'E') {
      const statement = portals.get(cString(body, 0).text);
      this.#count(statement === undefined ? '' : (statements.get(statement) ?? ''));
    }
  }

  #onBackend(type: string, body: Buffer): void {
    if (type !== 'C') return;
    const tag = cString(body, 0).text.split(' ');
    if (tag[0] === 'INSERT' || tag[0] === 'UPDATE') this.#counts.rowsWritten += Number(tag[tag.length - 1]) || 0;
  }

  #count(sql: string): void {
    const text = sql.trimStart().toLowerCase();
    this.#counts.statements++;
    if (text.startsWith('insert') && text.includes('on conflict')) this.#counts.upserts++;
    else if (/^(insert|update|delete)/.test(text)) this.#counts.otherWrites++;
    else if (text.startsWith('select') && text.includes('"books"')) this.#counts.bookReads++;
  }
}

/** Splits one direction of a connection into protocol messages (type byte + int32 length). */
class MessageReader {
  skipBytes = 0;
  onSslRequest: () => void = () => {};
  #buffer: Buffer = Buffer.alloc(0);
  #startup: boolean;

  constructor(
    startup: boolean,
    readonly onMessage: (type: string, body: Buffer) => void,
  ) {
    this.#startup = startup;
  }

  feed(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    if (this.skipBytes > 0 && this.#buffer.length > 0) {
      const skip = Math.min(this.skipBytes, this.#buffer.length);
      this.#buffer = this.#buffer.subarray(skip);
      this.skipBytes -= skip;
    }
    for (;;) {
      if (this.#startup) {
        // Startup, SSL and cancel requests have no type byte.
        if (this.#buffer.length < 8) return;
        const length = this.#buffer.readInt32BE(0);
        if (this.#buffer.length < length) return;
        const code = this.#buffer.readInt32BE(4);
        this.#buffer = this.#buffer.subarray(length);
        if (code === SSL_REQUEST) this.onSslRequest();
        else this.#startup = false;
        continue;
      }
      if (this.#buffer.length < 5) return;
      const length = this.#buffer.readInt32BE(1);
      if (this.#buffer.length < 1 + length) return;
      this.onMessage(String.fromCharCode(this.#buffer[0]!), this.#buffer.subarray(5, 1 + length));
      this.#buffer = this.#buffer.subarray(1 + length);
    }
  }
}

function cString(buffer: Buffer, start: number): { text: string; next: number } {
  const end = buffer.indexOf(0, start);
  const stop = end < 0 ? buffer.length : end;
  return { text: buffer.toString('utf8', start, stop), next: stop + 1 };
}
