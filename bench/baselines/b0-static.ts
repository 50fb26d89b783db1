/**
 * B0: bare node:http answering the poll endpoint's exact body and headers from memory
 * (BENCH_BODY, BENCH_ETAG), with the same If-None-Match handling. The ceiling for polling.
 */
import { createServer } from 'node:http';
import { serve } from './serve.js';

const body = Buffer.from(process.env.BENCH_BODY ?? '{}');
const etag = process.env.BENCH_ETAG ?? '"1"';

const server = createServer((req, res) => {
  const headers = { ETag: etag, 'Cache-Control': 'no-cache', 'X-Progress-Source': 'redis' };
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, 'Content-Type': 'application/json', 'Content-Length': body.length });
  res.end(body);
});

serve(server);
