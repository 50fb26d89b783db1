import { once } from 'node:events';
import { EventSource } from 'eventsource';
import type { FetchLike } from 'eventsource';
import { WebSocket } from 'ws';
import { withTimeout } from './wait.js';

/** A text frame as the wire carries it (SSE `event: text` data, or a WebSocket `text` message). */
export interface TextData {
  bookId: string;
  chapter: number;
  section: number;
  attempt: number;
  offset: number;
  text: string;
  reset?: true;
}

/**
 * A reader's copy of the books' text, built from the frames it receives the way a client must:
 * a reset empties the section, every other frame must start exactly at the section's length
 * (else it is a gap or a duplicate, recorded in `faults`).
 */
export class TextCopy {
  readonly sections = new Map<string, { attempt: number; bytes: Buffer }>();
  readonly faults: string[] = [];
  readonly savedChapters: Array<{ bookId: string; chapter: number }> = [];
  frames = 0;

  apply(frame: TextData): void {
    this.frames++;
    const key = `${frame.bookId}/${frame.chapter}:${frame.section}`;
    const held = this.sections.get(key);
    const text = Buffer.from(frame.text);
    if (frame.reset || !held) {
      if (frame.offset !== 0) this.faults.push(`${key}: first frame at offset ${frame.offset}`);
      this.sections.set(key, { attempt: frame.attempt, bytes: text });
      return;
    }
    if (frame.attempt !== held.attempt) this.faults.push(`${key}: attempt ${frame.attempt} without a reset (had ${held.attempt})`);
    if (frame.offset !== held.bytes.length) this.faults.push(`${key}: frame at ${frame.offset}, had ${held.bytes.length} bytes`);
    held.bytes = Buffer.concat([held.bytes, text]);
  }

  text(bookId: string, chapter: number, section: number): string {
    return this.sections.get(`${bookId}/${chapter}:${section}`)?.bytes.toString('utf8') ?? '';
  }

  bytes(bookId: string, chapter: number, section: number): number {
    return this.sections.get(`${bookId}/${chapter}:${section}`)?.bytes.length ?? 0;
  }
}

/** A real EventSource on a stream with text, applying every text frame to `copy`. */
export class TextWatch {
  readonly source: EventSource;
  readonly progress: unknown[] = [];
  lastId = '';
  opened: Promise<void>;

  constructor(url: string, readonly copy: TextCopy = new TextCopy(), lastEventId?: string) {
    const fetchWith: FetchLike | undefined = lastEventId === undefined ? undefined : (u, init) => fetch(u, { ...init, headers: { 'Last-Event-ID': lastEventId, ...init.headers } });
    this.source = new EventSource(url, fetchWith ? { fetch: fetchWith } : undefined);
    this.opened = withTimeout(once(this.source, 'open').then(() => undefined), 5_000, 'the text stream to open');
    this.opened.catch(() => {}); // awaited by the tests that need it
    this.source.addEventListener('text', (event) => {
      this.lastId = event.lastEventId;
      this.copy.apply(JSON.parse(event.data) as TextData);
    });
    this.source.addEventListener('chapter', (event) => {
      this.lastId = event.lastEventId;
      this.copy.savedChapters.push(JSON.parse(event.data) as { bookId: string; chapter: number });
    });
    this.source.addEventListener('progress', (event) => {
      this.lastId = event.lastEventId;
      this.progress.push(JSON.parse(event.data));
    });
  }

  close(): void {
    this.source.close();
  }
}

/** A WebSocket recording text and chapter messages into `copy`, and every message in `messages`. */
export async function textSocket(url: string, copy = new TextCopy(), headers: Record<string, string> = {}) {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/api/ai/ws`, { headers });
  const messages: Array<{ type: string } & Partial<TextData> & Record<string, unknown>> = [];
  ws.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { type: string } & TextData;
    messages.push(message as never);
    if (message.type === 'text') copy.apply(message);
    if (message.type === 'chapter') copy.savedChapters.push({ bookId: message.bookId, chapter: message.chapter });
  });
  await withTimeout(once(ws, 'open'), 5_000, 'the WebSocket to open');
  return { ws, copy, messages, send: (message: unknown) => ws.send(JSON.stringify(message)) };
}

/** Splits `text` at the given cut points (in code points, so no chunk splits a character). */
export function chunked(whole: string, cuts: number[]): string[] {
  const text = Array.from(whole);
  const points = [...new Set(cuts.map((c) => Math.min(Math.max(c, 1), text.length - 1)))].filter((c) => c > 0 && c < text.length).sort((a, b) => a - b);
  const out: string[] = [];
  let from = 0;
  for (const p of points) {
    out.push(text.slice(from, p).join(''));
    from = p;
  }
  out.push(text.slice(from).join(''));
  return out.filter((c) => c !== '');
}
