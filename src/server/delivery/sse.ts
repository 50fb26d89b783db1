/** One Server-Sent Events message, as the wire format of the HTML standard defines it. */
export interface SseEvent {
  event?: string;
  id?: string;
  data?: string;
  retry?: number;
}

const LINE_BREAK = /\r\n|\r|\n/;
const HAS_LINE_BREAK = /[\r\n]/;
const FORBIDDEN_IN_FIELD = /[\r\n\0]/;

/**
 * Serializes one event. Data with line breaks becomes several `data:` lines, so no text in a
 * message can start a field of its own; `event` and `id` must hold no CR, LF or NUL.
 */
export function formatSseEvent(message: SseEvent): string {
  let out = '';
  if (message.event !== undefined) out += `event: ${field('event', message.event)}\n`;
  if (message.id !== undefined) out += `id: ${field('id', message.id)}\n`;
  if (message.retry !== undefined) out += `retry: ${Math.max(0, Math.trunc(message.retry))}\n`;
  if (message.data !== undefined) {
    // Serialized JSON has no raw line breaks: one data line, without splitting.
    const lines = HAS_LINE_BREAK.test(message.data) ? message.data.split(LINE_BREAK) : [message.data];
    for (const line of lines) out += `data: ${line}\n`;
  }
  return `${out}\n`;
}

/** A comment line: ignored by clients, keeps proxies and load balancers from closing an idle stream. */
export function formatSseComment(text: string): string {
  return `: ${text.replace(/[\r\n]/g, ' ')}\n\n`;
}

function field(name: string, value: string): string {
  if (FORBIDDEN_IN_FIELD.test(value)) throw new Error(`SSE ${name} must not contain CR, LF or NUL`);
  return value;
}

/**
 * An event's bytes, as streams write them to their socket: one chunk of a chunked body
 * (`<size in hex>\r\n<event>\r\n`), so an event shared by many streams is framed once and
 * each stream writes it with one call.
 */
export class EncodedEvent {
  readonly chunk: Buffer;
  /** Where the event starts in `chunk`, after the chunk's size line. */
  readonly eventStart: number;

  /** `parts`: the event's text (see formatSseEvent), in as many pieces as the caller has it. */
  constructor(...parts: string[]) {
    let size = 0;
    for (const part of parts) size += Buffer.byteLength(part);
    const sizeLine = `${size.toString(16)}\r\n`;
    this.eventStart = sizeLine.length;
    this.chunk = Buffer.allocUnsafe(sizeLine.length + size + 2);
    let at = this.chunk.write(sizeLine, 0, 'latin1');
    for (const part of parts) at += this.chunk.write(part, at, 'utf8');
    this.chunk.write('\r\n', at, 'latin1');
  }

  /**
   * A `progress` event carrying `json`. The bytes are written from the JSON itself, without the
   * event's text built first: this runs once per update, and the text would be garbage at once.
   */
  static progress(json: string, id?: string): EncodedEvent {
    return EncodedEvent.named('progress', json, id);
  }

  /** An event named `event` (`progress`, `patch`) carrying `json`, built as progress() is. */
  static named(event: string, json: string, id?: string): EncodedEvent {
    // JSON from a foreign publisher may hold line breaks between its tokens: one data line each.
    if (HAS_LINE_BREAK.test(json)) return new EncodedEvent(formatSseEvent({ event, id, data: json }));
    const head = id === undefined ? `event: ${event}\ndata: ` : `event: ${event}\nid: ${field('id', id)}\ndata: `;
    return new EncodedEvent(head, json, '\n\n');
  }

  /** The event without chunk framing, for a body that has none (an HTTP/1.0 client). */
  get plain(): Buffer {
    return this.chunk.subarray(this.eventStart, this.chunk.length - 2);
  }
}
