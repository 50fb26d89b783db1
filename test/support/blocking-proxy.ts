import { createServer, request } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An HTTP proxy in front of a real server that can refuse SSE (as some corporate proxies do)
 * and can answer polls with a stale body, to show what the client does with one.
 */
export class BlockingProxy {
  blockStreams = false;
  /** When set, GET /api/ai/progress/:id answers this body once instead of asking the server. */
  staleBody: string | null = null;
  streamRequests = 0;
  pollRequests = 0;
  readonly #server: Server;
  readonly #target: URL;
  #port = 0;
  #closed = false;

  private constructor(target: string) {
    this.#target = new URL(target);
    this.#server = createServer((req, res) => this.#handle(req, res));
  }

  static async start(target: string): Promise<BlockingProxy> {
    const proxy = new BlockingProxy(target);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    proxy.#port = (proxy.#server.address() as AddressInfo).port;
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = req.url ?? '/';
    const isStream = path.includes('/stream');
    if (isStream) this.streamRequests++;
    else if (path.startsWith('/api/ai/progress/')) this.pollRequests++;
    if (isStream && this.blockStreams) {
      res.writeHead(502, { 'Content-Type': 'text/plain' }).end('streaming is not allowed here');
      return;
    }
    if (!isStream && path.startsWith('/api/ai/progress/') && this.staleBody !== null) {
      const body = this.staleBody;
      this.staleBody = null;
      res.writeHead(200, { 'Content-Type': 'application/json', ETag: '"stale"' }).end(body);
      return;
    }
    const upstream = request(
      { host: this.#target.hostname, port: this.#target.port, path, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  }
}
