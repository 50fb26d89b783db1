/**
 * The peer users would pick instead: Socket.IO (WebSocket transport) with
 * @socket.io/redis-adapter. Each client joins the room of the book in its handshake query;
 * publishers broadcast with `io.to(book).emit('progress', json)` from their own process.
 */
import { createServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { REDIS_URL } from '../support/fixtures.js';
import { serve } from './serve.js';

const pub = new Redis(REDIS_URL);
const sub = new Redis(REDIS_URL);
const server = createServer();
const io = new Server(server, { transports: ['websocket'], serveClient: false });
io.adapter(createAdapter(pub, sub, { key: process.env.BENCH_SOCKETIO_KEY ?? 'socket.io' }));
io.on('connection', (socket) => {
  const book = socket.handshake.query.book;
  if (typeof book === 'string') void socket.join(book);
});

serve(server, () => {
  pub.disconnect();
  sub.disconnect();
});
