import { get } from 'node:http';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_URL, createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { NginxProcess } from '../support/nginx-process.js';
import { ServerProcess } from '../support/server-process.js';
import { tryWebSocket } from '../support/upgrade.js';
import { until, withTimeout } from '../support/wait.js';
import { bookId, published } from '../server/http.js';

/** nginx listens here and the test's clients connect from CLIENT_ADDRESS: three distinct loopback addresses. */
const NGINX_HOST = '127.0.0.2';
const CLIENT_ADDRESS = '127.0.0.3';
const HEARTBEAT_MS = 400;
const MAX_CONNECTIONS = 4;

let database: TestDatabase;
let server: ServerProcess;
let nginx: NginxProcess;
let proxied: string;

beforeAll(async () => {
  database = await createTestDatabase();
  server = await ServerProcess.start({
    REDIS_URL,
    REDIS_KEY_PREFIX: uniquePrefix(),
    DATABASE_URL: database.url,
    HEARTBEAT_MS: String(HEARTBEAT_MS),
    MAX_SSE_CONNECTIONS: String(MAX_CONNECTIONS),
    TRUST_PROXY: 'true',
    LOG_LEVEL: 'debug',
  });
  nginx = await NginxProcess.start(new URL(server.url).host, NGINX_HOST);
  proxied = `http://${NGINX_HOST}:${nginx.port}`;
});
afterAll(async () => {
  await nginx?.stop();
  await server?.stop();
  await database?.drop();
});

/** A raw SSE reader from CLIENT_ADDRESS: when each event id and each comment arrived. */
class Stream {
  readonly ids = new Map<string, number>();
  readonly comments: number[] = [];
  response: IncomingMessage | null = null;
  readonly #request: ClientRequest;
  readonly opened: Promise<IncomingMessage>;
  #buffer = '';

  constructor(url: string) {
    let opened!: (res: IncomingMessage) => void;
    let failed!: (error: Error) => void;
    this.opened = withTimeout(new Promise((resolve, reject) => ([opened, failed] = [resolve, reject])), 5_000, `the stream ${url}`);
    this.#request = get(url, { localAddress: CLIENT_ADDRESS, headers: { Accept: 'text/event-stream' } }, (res) => {
      this.response = res;
      res.setEncoding('utf8');
      res.on('data', (text: string) => this.#read(text));
      opened(res);
    });
    this.#request.on('error', failed);
  }

  #read(text: string): void {
    const now = performance.now();
    this.#buffer += text;
    let end: number;
    while ((end = this.#buffer.indexOf('\n\n')) >= 0) {
      const event = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      for (const line of event.split('\n')) {
        if (line.startsWith('id: ')) this.ids.set(line.slice(4), now);
        if (line.startsWith(':')) this.comments.push(now);
      }
    }
  }

  close(): void {
    this.#request.destroy();
  }
}

describe('behind Debian nginx with deploy/nginx.conf', () => {
  it('passes SSE events unbuffered: each arrives within a few ms of the direct stream', async () => {
    const id = bookId('nginx-sse');
    await published(server.url, id, { message: 'v1' });
    const direct = new Stream(`${server.url}/api/ai/progress/${id}/stream`);
    const through = new Stream(`${proxied}/api/ai/progress/${id}/stream`);
    try {
      await Promise.all([direct.opened, through.opened]);
      expect(through.response?.headers['content-type']).toMatch(/^text\/event-stream/);
      await until(() => direct.ids.has('1') && through.ids.has('1'), 5_000, 'the first state on both streams');
      const updates = 20;
      for (let v = 2; v <= updates + 1; v++) {
        await published(server.url, id, { message: `v${v}` });
        await until(() => direct.ids.has(String(v)) && through.ids.has(String(v)), 5_000, `version ${v} on both streams`);
      }
      const lags = [...Array(updates).keys()].map((i) => (through.ids.get(String(i + 2)) as number) - (direct.ids.get(String(i + 2)) as number)).sort((a, b) => a - b);
      expect(lags[Math.floor(lags.length / 2)], `lags ${lags.map((l) => l.toFixed(1)).join(' ')} ms`).toBeLessThan(5);
      // A buffering proxy would hold them for seconds (until its buffer fills); a loaded machine may stall one hop briefly.
      expect(lags.at(-1), `lags ${lags.map((l) => l.toFixed(1)).join(' ')} ms`).toBeLessThan(100);
    } finally {
      direct.close();
      through.close();
    }
  });

  it('passes heartbeats of an idle stream', async () => {
    const id = bookId('nginx-heartbeat');
    await published(server.url, id, { message: 'then silence' });
    const through = new Stream(`${proxied}/api/ai/progress/${id}/stream`);
    try {
      await through.opened;
      await until(() => through.comments.length >= 2, HEARTBEAT_MS * 10, 'two heartbeats through nginx');
    } finally {
      through.close();
    }
  });

  it('upgrades the WebSocket (with the page\'s own Origin too), and a plain GET gets 426', async () => {
    const id = bookId('nginx-ws');
    await published(server.url, id, { message: 'over the proxied socket' });
    for (const origin of [undefined, proxied]) {
      const result = await tryWebSocket(`${proxied.replace('http', 'ws')}/api/ai/ws`, origin);
      expect(result.status, 'body' in result ? result.body : '').toBe(101);
      if (!('ws' in result)) continue;
      const message = new Promise<string>((resolve) => result.ws.once('message', (data) => resolve(data.toString())));
      result.ws.send(JSON.stringify({ type: 'subscribe', books: [id] }));
      expect(JSON.parse(await withTimeout(message, 5_000, 'a WebSocket message through nginx')).data.message).toBe('over the proxied socket');
      result.ws.terminate();
    }
    expect((await tryWebSocket(`${proxied.replace('http', 'ws')}/api/ai/ws`, 'http://elsewhere.example.test')).status).toBe(403);
    const plain = await fetch(`${proxied}/api/ai/ws`);
    expect(plain.status).toBe(426);
  });

  it('passes 304 with its ETag, and 503 with Retry-After', async () => {
    const id = bookId('nginx-304');
    const state = await published(server.url, id, { message: 'cached' });
    const notModified = await fetch(`${proxied}/api/ai/progress/${id}`, { headers: { 'If-None-Match': `"${state.version}"` } });
    expect(notModified.status).toBe(304);
    expect(notModified.headers.get('etag')).toBe(`"${state.version}"`);

    const streams = Array.from({ length: MAX_CONNECTIONS }, () => new Stream(`${proxied}/api/ai/progress/${id}/stream`));
    try {
      await Promise.all(streams.map((s) => s.opened));
      await until(async () => (await server.metric('booksai_sse_streams')) >= MAX_CONNECTIONS, 15_000, 'every stream counted');
      const refused = await fetch(`${proxied}/api/ai/progress/${id}/stream`);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('2');
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('too_many_connections');
    } finally {
      for (const s of streams) s.close();
    }
  });

  it('logs the client address from X-Forwarded-For with TRUST_PROXY=true', async () => {
    const res = await withTimeout(
      new Promise<IncomingMessage>((resolve, reject) => get(`${proxied}/healthz?who`, { localAddress: CLIENT_ADDRESS }, resolve).on('error', reject)),
      5_000,
      'a request through nginx',
    );
    res.resume();
    expect(res.statusCode).toBe(200);
    await until(() => server.output.includes(`"client":"${CLIENT_ADDRESS}"`), 5_000, `a log line with client ${CLIENT_ADDRESS}`);
    expect(nginx.log).not.toMatch(/\[(error|crit|alert|emerg)\]/);
  });
});
