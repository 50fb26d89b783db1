/**
 * One raw HTTP/1.1 SSE client connection, as a browser's EventSource would open it: a plain
 * GET over a TCP socket, the response head, chunked transfer decoding, then SSE events split
 * on blank lines. No polyfill and no http.Agent, so thousands fit in one process.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';

export interface SseListener {
  /** The response head arrived with this status (200 for a stream). */
  onOpen(status: number): void;
  /** A complete event that carried data; `id` is its `id:` field or null. */
  onEvent(id: string | null, data: string): void;
  /** The connection ended: `error` is null when the server ended the stream cleanly. */
  onClose(error: Error | null): void;
}

const MAX_HEAD_CHARS = 16_384;

type Phase = 'head' | 'size' | 'data' | 'crlf' | 'identity' | 'done';

export class SseConnection {
  readonly #socket: Socket;
  readonly #listener: SseListener;
  #phase: Phase = 'head';
  /** Received text not yet decoded (latin1: one char per byte, so chunk sizes count chars). */
  #pending = '';
  #chunkLeft = 0;
  /** Decoded SSE text not yet ending with a blank line. */
  #sse = '';
  #closed = false;
  /** Bytes received after the response head: what the stream costs on the wire. */
  bodyBytes = 0;

  constructor(host: string, port: number, path: string, listener: SseListener) {
    this.#listener = listener;
    this.#socket = connect({ host, port });
    this.#socket.setNoDelay(true);
    this.#socket.once('connect', () => {
      this.#socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n`);
    });
    this.#socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.#socket.once('error', (error) => this.#finish(error));
    this.#socket.once('close', () => this.#finish(this.#phase === 'done' ? null : new Error('connection closed by the server')));
  }

  close(): void {
    this.#closed = true;
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    this.bodyBytes += chunk.length;
    this.#pending += chunk.toString('latin1');
    for (;;) {
      if (this.#phase === 'head') {
        const end = this.#pending.indexOf('\r\n\r\n');
        if (end < 0) {
          if (this.#pending.length > MAX_HEAD_CHARS) this.#fail('response head too long');
          return;
        }
        const head = this.#pending.slice(0, end);
        this.#pending = this.#pending.slice(end + 4);
        const status = Number(head.slice(9, 12));
        this.#phase = /\r\ntransfer-encoding:\s*chunked/i.test(head) ? 'size' : 'identity';
        this.#listener.onOpen(status);
        if (status !== 200) return this.#fail(`status ${status}`);
      } else if (this.#phase === 'size') {
        const end = this.#pending.indexOf('\r\n');
        if (end < 0) break;
        const size = parseInt(this.#pending.slice(0, end), 16);
        this.#pending = this.#pending.slice(end + 2);
        if (!(size > 0)) {
          this.#phase = 'done';
          this.#socket.end();
          break;
        }
        this.#chunkLeft = size;
        this.#phase = 'data';
      } else if (this.#phase === 'data') {
        const take = Math.min(this.#chunkLeft, this.#pending.length);
        this.#sse += this.#pending.slice(0, take);
        this.#pending = this.#pending.slice(take);
        this.#chunkLeft -= take;
        if (this.#chunkLeft > 0) break;
        this.#phase = 'crlf';
      } else if (this.#phase === 'crlf') {
        if (this.#pending.length < 2) break;
        this.#pending = this.#pending.slice(2);
        this.#phase = 'size';
      } else if (this.#phase === 'identity') {
        this.#sse += this.#pending;
        this.#pending = '';
        break;
      } else {
        break;
      }
    }
    this.#parseEvents();
  }

  #parseEvents(): void {
    let start = 0;
    for (let end = this.#sse.indexOf('\n\n'); end >= 0; end = this.#sse.indexOf('\n\n', start)) {
      this.#dispatch(this.#sse.slice(start, end));
      start = end + 2;
    }
    if (start > 0) this.#sse = this.#sse.slice(start);
  }

  #dispatch(block: string): void {
    let id: string | null = null;
    let data: string | null = null;
    for (const line of block.split('\n')) {
      if (line.startsWith('data:')) {
        const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
        data = data === null ? value : `${data}\n${value}`;
      } else if (line.startsWith('id:')) {
        id = line.charCodeAt(3) === 32 ? line.slice(4) : line.slice(3);
      }
    }
    if (data !== null && !this.#closed) this.#listener.onEvent(id, data);
  }

  #fail(message: string): void {
    this.#socket.destroy();
    this.#finish(new Error(message));
  }

  #finish(error: Error | null): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener.onClose(error);
  }
}
