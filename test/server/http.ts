import { expect } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';
import { withTimeout } from '../support/wait.js';

export interface ErrorBody {
  success: false;
  error: { code: string; message: string };
}

/** A book id no other test (or run) shares. */
export function bookId(label: string): string {
  return `${label}-${Math.random().toString(36).slice(2, 10)}`;
}

export function progressUrl(baseUrl: string, id: string): string {
  return `${baseUrl}/api/ai/progress/${id}`;
}

/** POSTs `body` (serialized unless already a string) and returns the response. */
export function publish(baseUrl: string, id: string, body: unknown): Promise<Response> {
  return fetch(progressUrl(baseUrl, id), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** POSTs `body`, expects 200 and returns the new state. */
export async function published(baseUrl: string, id: string, body: unknown): Promise<BookProgress> {
  const res = await publish(baseUrl, id, body);
  const json = (await res.json()) as { success: boolean; data: BookProgress };
  expect(res.status, JSON.stringify(json)).toBe(200);
  expect(json.success).toBe(true);
  return json.data;
}

/** Asserts the API's error shape with `status` and `code`, and that nothing internal leaks. */
export async function expectError(res: Response, status: number, code: string): Promise<ErrorBody> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  // A stack trace, raw or escaped inside a JSON string: "Error: ...\n    at fn (file.ts:1:2)".
  expect(text).not.toMatch(/(\n|\\n)\s+at |\.[cm]?[jt]s:\d+|node_modules|Error:/);
  const body = JSON.parse(text) as ErrorBody;
  expect(body).toEqual({ success: false, error: { code, message: expect.any(String) } });
  expect(body.error.message.length).toBeGreaterThan(0);
  return body;
}

/**
 * An SSE response read as raw text through fetch, for what EventSource hides: headers, the
 * retry hint, the exact frames. `close()` aborts the request.
 */
export class RawStream {
  readonly response: Response;
  text = '';
  ended = false;
  readonly #controller: AbortController;
  readonly #reading: Promise<void>;
  readonly #listeners = new Set<() => void>();

  private constructor(response: Response, controller: AbortController) {
    this.response = response;
    this.#controller = controller;
    this.#reading = this.#read();
  }

  static async open(url: string, headers: Record<string, string> = {}): Promise<RawStream> {
    const controller = new AbortController();
    const response = await withTimeout(fetch(url, { headers, signal: controller.signal }), 5_000, `response headers of ${url}`);
    return new RawStream(response, controller);
  }

  /** Resolves once the received text satisfies `test`. */
  async until(test: (text: string) => boolean, ms = 5_000, what = 'matching stream text'): Promise<string> {
    let poll = () => {};
    const check = new Promise<void>((resolve, reject) => {
      poll = () => {
        if (test(this.text)) resolve();
        else if (this.ended) reject(new Error(`stream ended before ${what}; got ${JSON.stringify(this.text.slice(-500))}`));
      };
      this.#listeners.add(poll);
      poll();
    });
    try {
      await withTimeout(check, ms, what);
    } finally {
      this.#listeners.delete(poll);
    }
    return this.text;
  }

  /** Resolves once the server has ended the response. */
  async end(ms = 5_000): Promise<string> {
    await withTimeout(this.#reading, ms, 'the server to end the stream');
    return this.text;
  }

  close(): void {
    this.#controller.abort();
  }

  async #read(): Promise<void> {
    const body = this.response.body;
    if (!body) {
      this.ended = true;
      return;
    }
    const decoder = new TextDecoder();
    try {
      for await (const chunk of body) {
        this.text += decoder.decode(chunk as Uint8Array, { stream: true });
        this.#changed();
      }
    } catch {
      // Aborted by close().
    } finally {
      this.ended = true;
      this.#changed();
    }
  }

  #changed(): void {
    for (const listener of [...this.#listeners]) listener();
  }
}

/** The complete `progress` events in raw SSE text (a block not yet ended by a blank line is left out). */
export function progressEvents(text: string): Array<{ id: string; state: BookProgress }> {
  const events: Array<{ id: string; state: BookProgress }> = [];
  for (const block of text.split('\n\n').slice(0, -1)) {
    const lines = block.split('\n');
    if (!lines.includes('event: progress')) continue;
    const id = lines.find((line) => line.startsWith('id: '))?.slice(4) ?? '';
    const data = lines.filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).join('\n');
    events.push({ id, state: JSON.parse(data) as BookProgress });
  }
  return events;
}
