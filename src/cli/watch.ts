import { setTimeout as sleep } from 'node:timers/promises';
import { BookIdSchema, BookProgressSchema, isTerminal } from '../progress/schema.js';
import type { BookProgress } from '../progress/schema.js';
import { CliError, EXIT_FAILED, EXIT_OK, integerOption, parse } from './args.js';
import type { Command } from './args.js';
import { TARGET_HELP, TARGET_OPTIONS, headersFor, networkReason, refusal, targetFrom } from './client.js';
import type { Target } from './client.js';
import { SseParser } from './sse.js';
import { BarView, LineView } from './watch-view.js';
import type { WatchView } from './watch-view.js';

/** How long the server may stay unreachable before `watch` gives up with exit 2, by default. */
export const DEFAULT_UNREACHABLE_SECONDS = 10;
/** No byte for this long means a dead connection: the server sends a heartbeat every HEARTBEAT_MS (at most 25 s). */
const IDLE_MS = 60_000;
const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 2_000;

const HELP = `usage: booksai-progress watch <bookId…> [--url URL] [--token TOKEN] [--timeout SECONDS]

Shows a live progress bar per book (step, chapter, ETA); prints one line per update when stdout
is not a terminal. Follows the server's SSE stream and resumes it after a drop (Last-Event-ID).

Exit codes: 0 every book COMPLETE; 1 one or more ended ERROR (once all have ended);
2 the server could not be reached for --timeout seconds, refused the watch, or a usage error.

${TARGET_HELP}
  --timeout S    seconds to keep retrying an unreachable server (default ${DEFAULT_UNREACHABLE_SECONDS})
  --plain        plain lines even on a terminal`;

export const watchCommand: Command = {
  name: 'watch',
  summary: 'live progress bars until every book has finished',
  help: HELP,
  async run(argv) {
    const parsed = parse(argv, { ...TARGET_OPTIONS, timeout: { type: 'string' }, plain: { type: 'boolean' } }, HELP, { min: 1, max: Infinity });
    if (parsed === null) return EXIT_OK;
    const { values, positionals } = parsed;
    const bookIds = [...new Set(positionals)];
    for (const id of bookIds) if (!BookIdSchema.safeParse(id).success) throw new CliError(`"${id}" is not a bookId: 1-128 characters of A-Z, a-z, 0-9, "_" or "-"`);
    const timeoutMs = integerOption(values.timeout ?? String(DEFAULT_UNREACHABLE_SECONDS), '--timeout', 1, 86_400) * 1_000;
    const target = targetFrom(values);
    const view: WatchView = process.stdout.isTTY && values.plain !== true ? new BarView(bookIds) : new LineView();
    // Ctrl-C must not leave the terminal with its cursor hidden.
    const interrupted = () => {
      view.close();
      process.exit(130);
    };
    process.once('SIGINT', interrupted);
    try {
      const states = await follow(target, bookIds, timeoutMs, view);
      view.close();
      return summarize(bookIds, states);
    } catch (error) {
      view.close();
      throw error;
    } finally {
      process.off('SIGINT', interrupted);
    }
  },
};

function summarize(bookIds: readonly string[], states: ReadonlyMap<string, BookProgress>): number {
  const failed = bookIds.filter((id) => states.get(id)?.status === 'ERROR');
  for (const id of failed) {
    const state = states.get(id) as BookProgress;
    process.stderr.write(`${id}: ERROR: ${state.error ?? state.message}\n`);
  }
  process.stderr.write(`${bookIds.length - failed.length} of ${bookIds.length} book${bookIds.length === 1 ? '' : 's'} COMPLETE\n`);
  return failed.length === 0 ? EXIT_OK : EXIT_FAILED;
}

/** Why one connection ended: every book finished, the stream closed, or a problem worth retrying. */
type Outcome = { kind: 'done' } | { kind: 'ended' } | { kind: 'problem'; reason: string; retryAfterMs?: number };

/** Follows the books until each has a terminal state; throws CliError (exit 2) when the server stays away. */
async function follow(target: Target, bookIds: readonly string[], timeoutMs: number, view: WatchView): Promise<Map<string, BookProgress>> {
  const states = new Map<string, BookProgress>();
  const parser = new SseParser();
  let downSince: number | null = null;
  let retryMs = FIRST_RETRY_MS;
  for (;;) {
    const budget = downSince === null ? timeoutMs : timeoutMs - (Date.now() - downSince);
    const outcome = await connect(target, bookIds, states, view, parser, Math.max(1_000, budget));
    if (outcome.kind === 'done') return states;
    if (outcome.kind === 'ended') {
      // The server closed a stream that had opened (a restart, a drain): resume at once.
      downSince = null;
      retryMs = FIRST_RETRY_MS;
      await sleep(Math.min(parser.retryMs ?? FIRST_RETRY_MS, MAX_RETRY_MS));
      continue;
    }
    if (downSince === null) {
      downSince = Date.now();
      view.note(`${target.url}: ${outcome.reason}; retrying for up to ${Math.round(timeoutMs / 1000)} s`);
    }
    const left = timeoutMs - (Date.now() - downSince);
    if (left <= 0) throw new CliError(`cannot reach the server at ${target.url} (tried for ${Math.round(timeoutMs / 1000)} s): ${outcome.reason}`);
    await sleep(Math.min(outcome.retryAfterMs ?? retryMs, left));
    retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
  }
}

/** One SSE connection of the multiplexed stream, from the request to its end. */
async function connect(
  target: Target,
  bookIds: readonly string[],
  states: Map<string, BookProgress>,
  view: WatchView,
  parser: SseParser,
  headersWithinMs: number,
): Promise<Outcome> {
  const controller = new AbortController();
  let idle = setTimeout(() => controller.abort(), headersWithinMs);
  const known = bookIds.map((id) => states.get(id)?.version ?? 0);
  const headers = headersFor(target, { Accept: 'text/event-stream', ...(known.some((v) => v > 0) ? { 'Last-Event-ID': known.join('.') } : {}) });
  try {
    let res: Response;
    try {
      res = await fetch(`${target.url}/api/ai/stream?books=${bookIds.map(encodeURIComponent).join(',')}`, { headers, signal: controller.signal });
    } catch (error) {
      return { kind: 'problem', reason: controller.signal.aborted ? `no answer within ${Math.round(headersWithinMs / 1000)} s` : networkReason(error) };
    }
    // 204: the server knows we hold every book's final state.
    if (res.status === 204) return allFinished(bookIds, states) ? { kind: 'done' } : { kind: 'problem', reason: 'the server ended the stream before every final state arrived' };
    if (res.status === 429 || res.status >= 500) {
      const retryAfter = Number(res.headers.get('retry-after'));
      return { kind: 'problem', reason: await refusal(res), ...(retryAfter > 0 ? { retryAfterMs: retryAfter * 1_000 } : {}) };
    }
    if (!res.ok || res.body === null) throw new CliError(`the server refused to stream: ${await refusal(res)}`);
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body) {
        clearTimeout(idle);
        idle = setTimeout(() => controller.abort(), IDLE_MS);
        for (const event of parser.push(decoder.decode(chunk, { stream: true }))) {
          if (event.event === 'auth') throw new CliError(`the server ended the stream: ${event.data} (mint a new token)`);
          if (event.event !== 'progress') continue;
          const checked = BookProgressSchema.safeParse(JSON.parse(event.data));
          if (!checked.success) continue;
          const state = checked.data;
          if (!bookIds.includes(state.bookId) || state.version <= (states.get(state.bookId)?.version ?? 0)) continue;
          states.set(state.bookId, state);
          view.show(state);
          if (allFinished(bookIds, states)) return { kind: 'done' };
        }
      }
    } catch (error) {
      if (error instanceof CliError) throw error;
      return { kind: 'problem', reason: controller.signal.aborted ? `no data for ${IDLE_MS / 1000} s` : networkReason(error) };
    }
    return { kind: 'ended' };
  } finally {
    clearTimeout(idle);
    controller.abort();
  }
}

function allFinished(bookIds: readonly string[], states: ReadonlyMap<string, BookProgress>): boolean {
  return bookIds.every((id) => {
    const state = states.get(id);
    return state !== undefined && isTerminal(state.status);
  });
}
