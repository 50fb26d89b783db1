import { once } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the fake answers one chat-completions request with. */
export type FakeReply =
  /** A normal streamed answer: one `data:` chunk per piece, finish_reason "stop", usage (when asked for), `[DONE]`. */
  | {
      kind: 'stream';
      chunks: string[];
      usage?: { prompt_tokens: number; completion_tokens: number };
      /** Awaited before chunk `index` is written: a test holds the stream there (a slow model, or a check mid-answer). */
      before?: (index: number) => Promise<void>;
    }
  /** An HTTP error, as OpenAI sends it: the status, a JSON error body, `Retry-After` when given. */
  | { kind: 'status'; status: number; retryAfter?: string }
  /**
   * Writes these chunks, then destroys the connection (or, with `clean`, ends the response as if
   * it were complete, as a proxy timing out may): no finish_reason, no `[DONE]`.
   */
  | { kind: 'drop'; chunks: string[]; clean?: boolean };

export type Responder = (body: ChatRequest) => FakeReply;

/** One request the fake received, and when (performance.now()) it arrived and its answer ended. */
export interface FakeRequest {
  readonly receivedAt: number;
  /** When the answer was written completely (or the connection cut); undefined while it is under way. */
  repliedAt: number | undefined;
  readonly body: ChatRequest;
  readonly authorization: string | undefined;
  readonly reply: FakeReply;
  /** Resolves once the connection of the answer closed (answered, cut, or closed by the client). */
  readonly closed: Promise<void>;
}

export interface ChatRequest {
  model: string;
  messages: Array<{ role: string; content: string }>;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
}

/**
 * A local server of the OpenAI chat-completions streaming API (POST <base>/chat/completions),
 * speaking its wire format as OpenAI does: `data: {json}` lines of `chat.completion.chunk`
 * objects with `choices[0].delta.content`, a last chunk carrying `usage` (with `choices: []`)
 * when the request has `stream_options.include_usage`, then `data: [DONE]`. Each request takes
 * the next scripted reply (`script`), or `respond`'s answer once the script is used up.
 */
export class FakeOpenAI {
  readonly requests: FakeRequest[] = [];
  readonly #queue: Array<FakeReply | Responder> = [];
  readonly #server: Server;
  #url = '';
  #served = 0;

  private constructor(readonly respond: Responder) {
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  /** Listens on a free loopback port. `respond` answers what no scripted reply does. */
  static async start(respond: Responder = answerFor): Promise<FakeOpenAI> {
    const fake = new FakeOpenAI(respond);
    fake.#server.listen(0, '127.0.0.1');
    await once(fake.#server, 'listening');
    fake.#url = `http://127.0.0.1:${(fake.#server.address() as AddressInfo).port}/v1`;
    return fake;
  }

  /** The API root to give as OPENAI_BASE_URL. */
  get baseUrl(): string {
    return this.#url;
  }

  /** The next requests get these replies (or the replies these functions give), in order. */
  script(...replies: Array<FakeReply | Responder>): void {
    this.#queue.push(...replies);
  }

  /** Resolves once `count` requests arrived. */
  async received(count: number): Promise<void> {
    while (this.requests.length < count) await once(this.#server, 'received');
  }

  /** Resolves once `count` requests were answered completely (or cut). */
  async answered(count: number): Promise<void> {
    while (this.#served < count) await once(this.#server, 'answered');
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const receivedAt = performance.now();
    let raw = '';
    for await (const piece of req) raw += piece;
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      sendError(res, 404, undefined, `Unknown request URL: ${req.method} ${req.url}`);
      return;
    }
    const body = JSON.parse(raw) as ChatRequest;
    const next = this.#queue.shift() ?? this.respond;
    const reply = typeof next === 'function' ? next(body) : next;
    const closed = new Promise<void>((resolve) => res.once('close', () => resolve()));
    const request: FakeRequest = { receivedAt, repliedAt: undefined, body, authorization: req.headers.authorization, reply, closed };
    this.requests.push(request);
    this.#server.emit('received');
    try {
      await this.#reply(reply, body, res);
    } finally {
      request.repliedAt = performance.now();
      this.#served++;
      this.#server.emit('answered');
    }
  }

  async #reply(reply: FakeReply, body: ChatRequest, res: ServerResponse): Promise<void> {
    if (reply.kind === 'status') {
      sendError(res, reply.status, reply.retryAfter, reply.status === 429 ? 'Rate limit reached for requests' : 'The server had an error while processing your request');
      return;
    }
    const id = `chatcmpl-fake${this.requests.length}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = body.stream_options?.include_usage === true;
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: body.model, system_fingerprint: 'fp_fake', choices, ...(usage ? { usage: null } : {}), ...extra })}\n\n`;
    const delta = (content: Record<string, string | null>, finish: string | null = null) => ({ index: 0, delta: content, logprobs: null, finish_reason: finish });

    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(chunk([delta({ role: 'assistant', content: '', refusal: null })]));
    for (const [index, text] of reply.chunks.entries()) {
      if (reply.kind === 'stream') await reply.before?.(index);
      if (res.destroyed) return;
      res.write(chunk([delta({ content: text })]));
    }
    if (reply.kind === 'drop' && reply.clean) {
      res.end();
      return;
    }
    if (reply.kind === 'drop') {
      // Let the written chunks leave before the cut, as a proxy or a crashed server would cut an answer under way.
      const socket = res.socket;
      if (socket) await new Promise<void>((resolve) => socket.write('', () => resolve()));
      socket?.destroy();
      return;
    }
    res.write(chunk([delta({}, 'stop')]));
    if (usage) {
      const counted = reply.usage ?? { prompt_tokens: wordCount(body.messages.map((m) => m.content).join(' ')), completion_tokens: reply.chunks.length };
      res.write(chunk([], { usage: { ...counted, total_tokens: counted.prompt_tokens + counted.completion_tokens } }));
    }
    res.write('data: [DONE]\n\n');
    res.end();
  }
}

function sendError(res: ServerResponse, status: number, retryAfter: string | undefined, message: string): void {
  const type = status === 429 ? 'requests' : status >= 500 ? 'server_error' : 'invalid_request_error';
  const code = status === 429 ? 'rate_limit_exceeded' : null;
  res.writeHead(status, { 'content-type': 'application/json', ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }) });
  res.end(JSON.stringify({ error: { message, type, param: null, code } }));
}

function wordCount(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}

/**
 * A plausible answer to the generator's prompts: chapter titles, one a line, for an outline
 * request ("List exactly N chapter titles"), else a short section in word-sized chunks.
 */
export function answerFor(body: ChatRequest): FakeReply {
  const prompt = body.messages.at(-1)?.content ?? '';
  const titles = /List exactly (\d+) chapter titles/.exec(prompt);
  if (titles) {
    const count = Number(titles[1]);
    return { kind: 'stream', chunks: Array.from({ length: count }, (_, i) => `${i + 1}. Fake Chapter ${i + 1}\n`) };
  }
  const where = /section (\d+) of \d+ of chapter (\d+)/.exec(prompt);
  return { kind: 'stream', chunks: sectionChunks(Number(where?.[2] ?? 0), Number(where?.[1] ?? 0)) };
}

/** The chunks `answerFor` streams for a chapter's section: what that section's text must be. */
export function sectionChunks(chapter: number, section: number): string[] {
  return ['Section ', `${chapter}.${section} `, 'of the ', 'fake ', 'model.'];
}
