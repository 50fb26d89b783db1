/**
 * B3: bare node:http SSE fan-out fed by one ioredis subscriber: per book an array of
 * responses, SUBSCRIBE on the first, and one loop writing each message's frame to all of
 * them. No framework, no snapshot on connect, no backpressure handling: the floor of cost.
 * It also takes the server's HTTP publish (`POST /api/ai/progress/:bookId`, scenario (c)):
 * parses the body, stamps the next version and the time, and PUBLISHes a state of the
 * same shape; no validation, no stored state, no atomic commit.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Redis } from 'ioredis';
import { redisKeys } from '../../src/broker/keys.js';
import { REDIS_URL, stateJson } from '../support/fixtures.js';
import { serve } from './serve.js';

const keys = redisKeys(process.env.BENCH_KEY_PREFIX ?? 'bench:');
const subscriber = new Redis(REDIS_URL);
const watchers = new Map<string, ServerResponse[]>();
const PATH = /^\/api\/ai\/progress\/([A-Za-z0-9_-]{1,128})\/stream$/;
const PUBLISH_PATH = /^\/api\/ai\/progress\/([A-Za-z0-9_-]{1,128})$/;
const publisher = new Redis(REDIS_URL);
/** The version of each book published through POST (seeded books hold 1). */
const versions = new Map<string, number>();

function publish(bookId: string, req: IncomingMessage, res: ServerResponse): void {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (body += chunk));
  req.on('end', () => {
    JSON.parse(body);
    const version = (versions.get(bookId) ?? 1) + 1;
    versions.set(bookId, version);
    publisher.publish(keys.channel(bookId), stateJson(bookId, version, Date.now())).then(
      () => res.writeHead(200, { 'Content-Type': 'application/json' }).end(`{"success":true,"data":{"version":${version}}}`),
      () => res.writeHead(503).end(),
    );
  });
}

subscriber.on('message', (channel: string, message: string) => {
  const list = watchers.get(keys.bookIdOfChannel(channel));
  if (!list) return;
  const { version } = JSON.parse(message) as { version: number };
  const frame = `event: progress\nid: ${version}\ndata: ${message}\n\n`;
  for (const res of list) res.write(frame);
});

const server = createServer((req, res) => {
  if (req.method === 'POST') {
    const target = PUBLISH_PATH.exec(req.url ?? '')?.[1];
    if (target === undefined) res.writeHead(404).end();
    else publish(target, req, res);
    return;
  }
  const bookId = PATH.exec(req.url ?? '')?.[1];
  if (bookId === undefined) {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
  });
  res.write('retry: 3000\n\n');
  let list = watchers.get(bookId);
  if (!list) {
    watchers.set(bookId, (list = []));
    void subscriber.subscribe(keys.channel(bookId));
  }
  list.push(res);
  res.once('close', () => {
    const current = watchers.get(bookId);
    if (!current) return;
    const at = current.indexOf(res);
    if (at >= 0) current.splice(at, 1);
    if (current.length === 0) {
      watchers.delete(bookId);
      void subscriber.unsubscribe(keys.channel(bookId));
    }
  });
});

serve(server, () => {
  subscriber.disconnect();
  publisher.disconnect();
});
