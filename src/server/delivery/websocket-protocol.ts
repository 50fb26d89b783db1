import { z } from 'zod';
import { BookIdSchema } from '../../progress/schema.js';
import { errorBody } from '../../refusal.js';

/**
 * The WebSocket protocol, the twin of sse.ts. Messages are JSON: `{ type: 'subscribe', books,
 * versions?, text?, textFrom?, delta? }`, `{ type: 'unsubscribe', books }` and `{ type: 'auth', token }` from the client;
 * `{ type: 'progress', data }`, `{ type: 'patch', bookId, data }` (with `delta: 'merge-patch'`), `{ type: 'text', bookId, chapter, section, attempt,
 * offset, text, reset? }`, `{ type: 'chapter', bookId, chapter, saved }`, `{ type: 'auth', data: { expiresAt } }` and `{ type: 'error',
 * [bookId,] error: { code, message } }` from the server.
 */
export const WEBSOCKET_PATH = '/api/ai/ws';
/** The largest message a client may send. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/** Close codes: the token expired (4401, as HTTP's 401), like the 1008 policy code but telling why. */
export const CLOSE_TOKEN_EXPIRED = 4401;
/** The server is shutting down (1012, service restart): clients reconnect elsewhere. */
export const CLOSE_RESTARTING = 1012;
/** The client fell too far behind the live text: it reconnects and resumes (textFrom) from what it has. */
export const CLOSE_TEXT_BEHIND = 4429;

export const ClientMessageSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('subscribe'),
    books: z.array(BookIdSchema).min(1),
    /** Versions the client already has, so only newer states are sent. */
    versions: z.record(z.string(), z.number().int().min(0)).optional(),
    /** Live text of these books too: `text` messages (and `chapter` ones for chapters saved meanwhile). */
    text: z.boolean().optional(),
    /** Where the client is in each book's text, `<chapter>:<section>[:<attempt>]:<offset>`: only what it lacks is sent. */
    textFrom: z.record(z.string(), z.string().max(64)).optional(),
    /** After a book's first `progress` message, `patch` messages: JSON Merge Patches against the state sent before. */
    delta: z.literal('merge-patch').optional(),
  }),
  z.object({ type: z.literal('unsubscribe'), books: z.array(BookIdSchema).min(1) }),
  /** A fresh token for the same user, sent before the current one expires. */
  z.object({ type: z.literal('auth'), token: z.string().min(1).max(16_384) }),
]);

export type ClientMessage = z.infer<typeof ClientMessageSchema>;

/** An `error` message; with `bookId` it concerns that book alone and the rest of the connection goes on. */
export function errorMessage(code: string, message: string, bookId?: string): object {
  return bookId === undefined ? { type: 'error', ...errorBody(code, message) } : { type: 'error', bookId, ...errorBody(code, message) };
}

/** A client's message, or the `error` message that answers it (null: a binary frame). */
export function parseClientMessage(raw: string | null): ClientMessage | { error: object } {
  try {
    const result = ClientMessageSchema.safeParse(raw === null ? null : JSON.parse(raw));
    if (result.success) return result.data;
    const issue = result.error.issues[0];
    return { error: errorMessage('invalid_message', `${issue?.path.join('.') || 'message'}: ${issue?.message ?? 'invalid'}`) };
  } catch {
    return { error: errorMessage('invalid_json', 'messages must be JSON text') };
  }
}
