/** Seconds a client should wait before retrying while a backend is down. */
export const RETRY_AFTER_SECONDS = 2;

export interface RefusalOptions {
  /** Sent as Retry-After; a 503 has RETRY_AFTER_SECONDS unless told otherwise. */
  retryAfterSeconds?: number | null;
  /** Sent as WWW-Authenticate (RFC 6750), for refusals of the caller's token. */
  challenge?: string | null;
  /** Facts a client can act on (e.g. the current length), sent as `error.details`. */
  details?: Readonly<Record<string, unknown>>;
}

/**
 * A request refused for a reason the caller can act on: a stable machine-readable `code`, the
 * HTTP `status` it is answered with, and a message naming the offending value. The project's one
 * error vocabulary: thrown by any layer, answered by http/errors.ts inside Hono and by
 * edge/raw-reply.ts outside it, sent as an `error` message on a WebSocket.
 */
export class Refusal extends Error {
  override readonly name = 'Refusal';
  readonly retryAfterSeconds: number | null;
  readonly challenge: string | null;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    options: RefusalOptions = {},
  ) {
    super(message);
    this.retryAfterSeconds = options.retryAfterSeconds ?? (status === 503 ? RETRY_AFTER_SECONDS : null);
    this.challenge = options.challenge ?? null;
    this.details = options.details;
  }

  /** The JSON body every error answer has. */
  get body(): ErrorBody {
    return errorBody(this.code, this.message, this.details);
  }

  /** The headers that go with the answer: Retry-After, WWW-Authenticate. */
  get headers(): Record<string, string> {
    const headers: Record<string, string> = {};
    if (this.retryAfterSeconds !== null) headers['Retry-After'] = String(this.retryAfterSeconds);
    if (this.challenge !== null) headers['WWW-Authenticate'] = this.challenge;
    return headers;
  }
}

export interface ErrorBody {
  success: false;
  error: { code: string; message: string; details?: Readonly<Record<string, unknown>> };
}

/** `{ success: false, error: { code, message[, details] } }`. */
export function errorBody(code: string, message: string, details?: Readonly<Record<string, unknown>>): ErrorBody {
  return { success: false, error: details === undefined ? { code, message } : { code, message, details } };
}
