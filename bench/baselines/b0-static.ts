/**
 * B0: bare node:http answering the poll endpoint's exact body and headers from memory
 * (BENCH_BODY, BENCH_ETAG, BENCH_HEADERS: the server's answer, fetched by the benchmark), with
 * the same If-None-Match handling. The ceiling for polling: the same bytes, none of the work.
 */
import { createServer } from 'node:http';
import type { OutgoingHttpHeaders } from 'node:http';
import { serve } from './serve.js';

const body = Buffer.from(process.env.BENCH_BODY ?? '{}');
const etag = process.env.BENCH_ETAG ?? '"1"';
/** Every header of the server's 200 but those Node writes itself and the entity's own. */
const served = JSON.parse(process.env.BENCH_HEADERS ?? '{"Cache-Control":"no-cache","X-Progress-Source":"redis"}') as Record<string, string>;
const notModified: OutgoingHttpHeaders = { ...served, ETag: etag };
const ok: OutgoingHttpHeaders = { ...notModified, 'Content-Type': 'application/json', 'Content-Length': body.length };

const server = createServer((req, res) => {
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, notModified);
    res.end();
    return;
  }
  res.writeHead(200, ok);
  res.end(body);
});

serve(server);
