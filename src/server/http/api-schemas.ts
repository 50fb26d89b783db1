import { z } from 'zod';
import { SCOPES } from '../../auth/caller.js';
import { BookIdSchema, BookProgressSchema, STATUSES, STEPS } from '../../progress/schema.js';

/**
 * The answers of the HTTP API as zod schemas: what openapi.ts publishes, and what the routes'
 * answers are typed against (`satisfies z.input<…>`), so the document and the code cannot part.
 * Requests are validated by the schemas beside their routes; these only describe.
 */

const epochMs = z.number().int().min(0).meta({ description: 'milliseconds since the epoch' });
const isoTime = z.string().meta({ description: 'an ISO 8601 date-time (UTC)' });

/** `{ success: false, error: { code, message, details? } }`: every refusal (src/refusal.ts). */
export const ErrorBodySchema = z
  .object({
    success: z.literal(false),
    error: z.object({
      code: z.string().meta({ description: 'stable, machine-readable: `not_found`, `invalid_token`, `rate_limited`, `broker_unavailable`, …' }),
      message: z.string().meta({ description: 'for people: names the offending value' }),
      details: z.record(z.string(), z.unknown()).optional().meta({ description: 'facts a client can act on, e.g. `length` of a section on `offset_mismatch`' }),
    }),
  })
  .meta({ id: 'Error', description: 'Every error answer (4xx, 5xx). Never a stack trace.' });

/** `{ success: true, data }`. */
export function envelope<T extends z.ZodType>(data: T) {
  return z.object({ success: z.literal(true), data });
}

export const HealthSchema = z.object({ status: z.literal('ok') }).meta({ id: 'Health' });

export const ReadinessSchema = z
  .object({
    ready: z.boolean(),
    draining: z.boolean().meta({ description: 'true from the first moment of shutdown' }),
    broker: z.enum(['ok', 'down']),
    database: z.enum(['ok', 'down']),
  })
  .meta({ id: 'Readiness', description: 'Also `error.details` of the 503 `not_ready`.' });

export const SessionSchema = z
  .object({
    auth: z.boolean().meta({ description: 'whether tokens are checked' }),
    sub: z.string().nullable().meta({ description: 'the user; null in open mode' }),
    tenant: z.string().nullable(),
    anyTenant: z.boolean().meta({ description: 'admins and the open mode read and write across tenants' }),
    scopes: z.array(z.enum(SCOPES)).meta({ description: 'what the caller may do, `admin` spelled out' }),
    expiresAt: epochMs.nullable(),
    staleAfterSeconds: z.number().int(),
  })
  .meta({ id: 'Session' });

export const TextAppendedSchema = z
  .object({ length: z.number().int().min(0).meta({ description: "the section's length in UTF-8 bytes: the next append's offset" }) })
  .meta({ id: 'TextAppended' });

export const BookStartedSchema = z
  .object({
    bookId: BookIdSchema,
    title: z.string(),
    chapters: z.number().int(),
    sectionsPerChapter: z.number().int(),
    status: z.literal('PLANNING'),
  })
  .meta({ id: 'BookStarted' });

export const RunStateSchema = z
  .enum(['queued', 'running', 'stalled', 'done'])
  .nullable()
  .meta({ id: 'RunState', description: "where the book stands in the generation queue; null for a book an outside worker publishes" });

export const BookSummarySchema = z
  .object({
    bookId: BookIdSchema,
    title: z.string(),
    owner: z.string().nullable(),
    status: z.enum(STATUSES),
    generationStep: z.enum(STEPS),
    run: RunStateSchema,
    progress: BookProgressSchema.nullable().meta({ description: "the book's newest state, with `stalledSince` when it is stalled" }),
    createdAt: isoTime,
    updatedAt: isoTime,
  })
  .meta({ id: 'BookSummary' });

export const SavedChapterSchema = z
  .object({ number: z.number().int().min(1), title: z.string(), content: z.string(), updatedAt: isoTime })
  .meta({ id: 'SavedChapter' });

export const BookDetailSchema = BookSummarySchema.extend({ chapters: z.array(SavedChapterSchema) }).meta({ id: 'BookDetail' });

export const LiveSectionSchema = z
  .object({ section: z.number().int().min(1), attempt: z.number().int().min(1), length: z.number().int().min(0) })
  .meta({ id: 'LiveSection', description: 'an attempt that changed means the section started over' });

export const ChapterTextSchema = z
  .object({
    bookId: BookIdSchema,
    chapter: z.number().int().min(1),
    title: z.string().nullable(),
    saved: z.boolean().meta({ description: 'true: the saved chapter (Postgres, final); false: the chapter being written (live text)' }),
    from: z.number().int().min(0),
    length: z.number().int().min(0).meta({ description: "the chapter's length in UTF-8 bytes: ask `?from=<length>` next" }),
    text: z.string(),
    reset: z.literal(true).optional().meta({ description: '`from` was past the length (a section started over): the text is from 0' }),
    sections: z.array(LiveSectionSchema).optional().meta({ description: 'live chapters only' }),
  })
  .meta({ id: 'ChapterText' });

const span = { startedAt: epochMs, endedAt: epochMs.nullable(), durationMs: z.number().int().nullable(), exact: z.boolean() };

export const TimelineSchema = z
  .object({
    bookId: BookIdSchema,
    startedAt: epochMs,
    endedAt: epochMs.nullable().meta({ description: 'null: running' }),
    durationMs: z.number().int().nullable(),
    status: z.string(),
    error: z.string().nullable(),
    totalChapters: z.number().int(),
    totalSections: z.number().int(),
    steps: z.array(z.object({ ...span, step: z.enum(STEPS) })),
    chapters: z.array(z.object({ ...span, chapter: z.number().int(), sections: z.array(z.object({ ...span, section: z.number().int() })) })),
  })
  .meta({ id: 'Timeline' });

const percentiles = { count: z.number().int(), p50: z.number().nullable(), p90: z.number().nullable() };
const rate = z.number().nullable();

export const AnalyticsSchema = z
  .object({
    since: epochMs,
    until: epochMs,
    tenant: z.string().nullable().meta({ description: 'the tenant the figures are of; null: every tenant' }),
    runs: z.object({ started: z.number().int(), completed: z.number().int(), failed: z.number().int(), running: z.number().int(), completionRate: rate, failureRate: rate }),
    runDuration: z.object(percentiles).meta({ description: 'COMPLETE runs, ms' }),
    steps: z.array(z.object({ ...percentiles, step: z.enum(STEPS) })).meta({ description: 'exact step spans, ms' }),
    chapter: z.object(percentiles),
    section: z.object(percentiles),
    throughput: z.object({ bucketMs: z.number().int(), buckets: z.array(z.object({ start: epochMs, completed: z.number().int(), failed: z.number().int() })) }),
    eta: z.object({
      runs: z.number().int(),
      checkpoints: z.array(z.object({ at: z.number(), learned: rate, linear: rate, lateCoverage: rate })),
    }).meta({ description: "the ETA's error (MAPE of the remaining time) at 10/25/50/75 % of the window's completed runs, replayed from their recorded steps" }),
  })
  .meta({ id: 'Analytics' });

/** The events of the SSE streams, as objects: each is sent as `event:`, `id:` and `data:` lines (data: the JSON). */
export const SseProgressEventSchema = z
  .object({
    event: z.literal('progress'),
    id: z.string().optional().meta({ description: 'one book: its version (`12`); a list: the versions in list order joined by `.` (`12.7.0`); the every-book stream: none' }),
    data: BookProgressSchema,
  })
  .meta({ id: 'SseProgressEvent', description: 'A state of a book: `event: progress`, `id: <version>`, `data: <BookProgress JSON>`.' });

export const SseAuthEventSchema = z
  .object({ event: z.literal('auth'), data: z.object({ code: z.literal('token_expired') }) })
  .meta({ id: 'SseAuthEvent', description: "The stream's token expired and the stream ends: reconnect with a fresh token and Last-Event-ID." });

/** Live text (docs/live-text.md "Streaming"), the data of `event: text` and, with its `type`, a WebSocket message: TextFeed's frameData. */
const textFields = {
  bookId: BookIdSchema,
  chapter: z.number().int().min(1),
  section: z.number().int().min(1),
  attempt: z.number().int().min(1).meta({ description: "1 when the section starts, +1 at each reset" }),
  offset: z.number().int().min(0).meta({ description: "the section's UTF-8 byte offset where `text` starts" }),
  text: z.string(),
  reset: z.literal(true).optional().meta({ description: 'offset 0: replaces what the client holds of the section (a new attempt)' }),
};
const chapterFields = {
  bookId: BookIdSchema,
  chapter: z.number().int().min(1),
  saved: z.literal(true).meta({ description: 'the chapter is saved: fetch it from GET /api/books/{bookId}/chapters/{n}, not from the stream' }),
};
const textEventId = z
  .string()
  .optional()
  .meta({ description: 'with text, every event\'s id is the progress id, `;`, and one text position per book in list order, `.`-joined: `<chapter>:<section>:<attempt>:<offset-after>` or `-` (`12.7;3:2:1:455.-`)' });

export const SseTextEventSchema = z
  .object({ event: z.literal('text'), id: textEventId, data: z.object(textFields) })
  .meta({ id: 'SseTextEvent', description: 'Live text of a section (streams opened with `?text=1`), merged per connection (at most every 50 ms).' });

export const SseChapterEventSchema = z
  .object({ event: z.literal('chapter'), id: textEventId, data: z.object(chapterFields) })
  .meta({ id: 'SseChapterEvent', description: 'A chapter the client was in, or missed, is saved (streams opened with `?text=1`).' });

export const SseHeartbeatEventSchema = z
  .object({ event: z.literal('heartbeat'), data: z.object({ heartbeatMs: z.number().int() }) })
  .meta({ id: 'SseHeartbeatEvent', description: 'With `?heartbeats=1`, the heartbeat as an event (EventSource cannot see comments): the first right after the `retry:` hint, then instead of `: heartbeat`.' });

export const SseEventSchema = z
  .union([SseProgressEventSchema, SseTextEventSchema, SseChapterEventSchema, SseAuthEventSchema, SseHeartbeatEventSchema])
  .meta({
    id: 'SseEvent',
    description:
      'One Server-Sent Event, shown as an object of its fields. On the wire: `event: progress`, `id: 12`, `data: {…}` lines and a blank line; ' +
      'a `retry:` hint first, and a `: heartbeat` comment when the stream carried nothing for HEARTBEAT_MS. The stream ends after COMPLETE or ERROR, ' +
      'or with a short `retry:` when the client fell TEXT_BACKLOG_BYTES behind on live text (it resumes from its last id).',
  });

const WsErrorMessageSchema = z
  .object({
    type: z.literal('error'),
    bookId: BookIdSchema.optional().meta({ description: 'the book refused (`not_found`); none of its states follow, the connection goes on' }),
    ...ErrorBodySchema.shape,
  })
  .meta({ id: 'WsErrorMessage' });

/** What the server sends over `/api/ai/ws`. */
export const WsServerMessageSchema = z
  .discriminatedUnion('type', [
    z.object({ type: z.literal('progress'), data: BookProgressSchema }).meta({ id: 'WsProgressMessage' }),
    z.object({ type: z.literal('text'), ...textFields }).meta({ id: 'WsTextMessage', description: 'live text, for a subscribe with `text: true`' }),
    z.object({ type: z.literal('chapter'), ...chapterFields }).meta({ id: 'WsChapterMessage', description: 'a chapter is saved: fetch it' }),
    z.object({ type: z.literal('auth'), data: z.object({ expiresAt: epochMs.nullable() }) }).meta({ id: 'WsAuthMessage', description: 'the fresh token of an `auth` message was taken' }),
    WsErrorMessageSchema,
  ])
  .meta({ id: 'WsServerMessage', description: 'A text frame from the server: JSON.' });

const transportCounts = { sse: z.number().int(), multiplexed: z.number().int(), 'every-book': z.number().int(), websocket: z.number().int() };

/** `GET /api/admin/status`: this process's own state and the cluster-wide queue (admin-status.ts). */
export const AdminStatusSchema = z
  .object({
    at: epochMs,
    process: z.object({ owner: z.string(), startedAt: epochMs, pid: z.number().int() }),
    health: ReadinessSchema,
    connections: z.object({
      total: z.number().int(),
      byTransport: z.object(transportCounts),
      byTenant: z.array(z.object({ tenant: z.string().nullable(), total: z.number().int(), ...z.object(transportCounts).partial().shape })),
      polls: z.object({ lastMinute: z.number().int(), thisMinute: z.number().int(), polledBooks: z.number().int() }),
    }),
    books: z.object({
      watched: z.number().int(),
      watchers: z.number().int(),
      everyBookWatchers: z.number().int(),
      list: z.array(z.object({ bookId: BookIdSchema, watchers: z.number().int(), tenant: z.string().nullable() })),
    }),
    snapshots: z.object({
      intervalMs: z.number().int(),
      lagMs: z.number().nullable().meta({ description: "ms since this process's last round that wrote its claim; null: none yet" }),
      lastRound: z
        .object({ endedAt: epochMs, durationMs: z.number(), outcome: z.enum(['written', 'skipped', 'failed']), rows: z.number().int(), error: z.string().optional() })
        .nullable(),
      taken: z.number().int(),
      rowsWritten: z.number().int(),
      failures: z.number().int(),
      waitingForDatabase: z.number().int(),
    }),
    generations: z.object({
      runningHere: z.number().int(),
      queued: z.number().int(),
      running: z.number().int(),
      stalled: z.number().int(),
      retrying: z.number().int(),
      generatorRetries: z.number().int(),
      resumed: z.number().int(),
      runs: z
        .array(
          z.object({
            bookId: BookIdSchema,
            title: z.string(),
            tenant: z.string().nullable(),
            state: z.enum(['queued', 'running', 'stalled']),
            owner: z.string().nullable(),
            leaseUntil: epochMs.nullable(),
            epoch: z.number().int(),
            claims: z.number().int(),
            retry: z.boolean(),
            cancelRequested: z.boolean(),
            queuedAt: epochMs,
          }),
        )
        .nullable()
        .meta({ description: 'cluster-wide; null when the database did not answer (see `error`)' }),
      error: z.string().optional(),
    }),
    faults: z.object({
      totals: z.record(z.string(), z.number().int()),
      recent: z.array(z.object({ at: epochMs, kind: z.string(), message: z.string(), count: z.number().int().optional(), detail: z.record(z.string(), z.unknown()) })),
    }),
  })
  .meta({ id: 'AdminStatus' });

export const AdoptResultSchema = z
  .object({
    tenant: z.string(),
    adopted: z.array(BookIdSchema),
    unchanged: z.array(BookIdSchema),
    refused: z.array(z.object({ bookId: BookIdSchema, reason: z.string() })),
  })
  .meta({ id: 'AdoptResult' });
