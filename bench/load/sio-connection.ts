/** One Socket.IO client (WebSocket transport, its own manager) behind the SSE client's listener. */
import { io } from 'socket.io-client';
import type { Socket } from 'socket.io-client';
import type { SseListener } from './sse-connection.js';

const VERSION = /"version":(\d+)/;

export class SocketIoConnection {
  readonly #socket: Socket;
  #closed = false;

  constructor(host: string, port: number, book: string, listener: SseListener) {
    this.#socket = io(`http://${host}:${port}`, {
      transports: ['websocket'],
      query: { book },
      reconnection: false,
      forceNew: true,
      timeout: 20_000,
    });
    this.#socket.once('connect', () => listener.onOpen(200));
    this.#socket.on('progress', (data: string) => {
      if (!this.#closed) listener.onEvent(VERSION.exec(data)?.[1] ?? null, data);
    });
    const finish = (error: Error | null) => {
      if (this.#closed) return;
      this.#closed = true;
      listener.onClose(error);
    };
    this.#socket.once('connect_error', (error) => finish(error));
    this.#socket.once('disconnect', (reason) => finish(new Error(`disconnected: ${reason}`)));
  }

  close(): void {
    this.#closed = true;
    this.#socket.disconnect();
  }
}
