/**
 * B1: bare node:http + one ioredis GET per request on the server's state key, wrapping the raw
 * JSON in the poll endpoint's envelope (no parsing, no validation). What one Redis round trip costs.
 */
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import { redisKeys } from '../../src/broker/keys.js';
import { REDIS_URL } from '../support/fixtures.js';
import { serve } from './serve.js';

const keys = redisKeys(process.env.BENCH_KEY_PREFIX ?? 'bench:');
const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
const PATH = /^\/api\/ai\/progress\/([A-Za-z0-9_-]{1,128})$/;
const VERSION = /"version":(\d+)/;

const server = createServer((req, res) => {
  const bookId = PATH.exec(req.url ?? '')?.[1];
  if (bookId === undefined) {
    res.writeHead(404).end();
    return;
  }
  redis.get(keys.state(bookId)).then(
    (raw) => {
      if (raw === null) {
        res.writeHead(404).end();
        return;
      }
      const etag = `"${VERSION.exec(raw)?.[1] ?? '0'}"`;
      const headers = { ETag: etag, 'Cache-Control': 'no-cache', 'X-Progress-Source': 'redis' };
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, headers).end();
        return;
      }
      const body = `{"success":true,"data":${raw}}`;
      res.writeHead(200, { ...headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    },
    () => res.writeHead(503).end(),
  );
});

serve(server, () => redis.disconnect());
