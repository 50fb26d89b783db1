/** One server-sent event, as the EventSource spec dispatches it. */
export interface SseEvent {
  readonly event: string;
  readonly data: string;
  /** The last event id seen so far on the stream (it carries over events without one). */
  readonly lastEventId: string;
}

/**
 * The event-stream parser of the HTML spec (section 9.2.6), fed text as it arrives. Events are
 * dispatched at their blank line; comments (heartbeats) are skipped; `retry` is kept.
 */
export class SseParser {
  #buffer = '';
  #data: string[] = [];
  #event = '';
  #lastEventId = '';
  /** The reconnection delay the server asked for, in ms; null until it sends one. */
  retryMs: number | null = null;

  /** Feeds a chunk of text; answers the events it completes. */
  push(chunk: string): SseEvent[] {
    this.#buffer += chunk;
    const events: SseEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.#buffer);
      // A lone CR at the end may be the first half of CRLF: wait for the next chunk.
      if (match === null || (match[0] === '\r' && match.index === this.#buffer.length - 1)) break;
      const line = this.#buffer.slice(0, match.index);
      this.#buffer = this.#buffer.slice(match.index + match[0].length);
      const event = this.#line(line);
      if (event !== null) events.push(event);
    }
    return events;
  }

  #line(line: string): SseEvent | null {
    if (line === '') {
      const data = this.#data;
      const event = this.#event;
      this.#data = [];
      this.#event = '';
      return data.length === 0 ? null : { event: event === '' ? 'message' : event, data: data.join('\n'), lastEventId: this.#lastEventId };
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.#data.push(value);
    else if (field === 'event') this.#event = value;
    else if (field === 'id' && !value.includes('\0')) this.#lastEventId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
    return null;
  }
}

/** The events of an event-stream body, until it ends. */
export async function* readEvents(body: ReadableStream<Uint8Array>, parser = new SseParser()): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  for await (const chunk of body) yield* parser.push(decoder.decode(chunk, { stream: true }));
}
