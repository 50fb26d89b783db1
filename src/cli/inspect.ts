import { loadConfig } from '../config.js';
import { BookIdSchema } from '../progress/schema.js';
import { CliError, EXIT_FAILED, EXIT_OK, parse } from './args.js';
import type { Command } from './args.js';
import { TARGET_HELP, TARGET_OPTIONS, headersFor, networkReason, refusal, targetFrom } from './client.js';
import type { Target } from './client.js';
import { pgliteLines, postgresLines } from './inspect-database.js';
import { block, redisLines } from './inspect-redis.js';

const PROBE_MS = 2_000;

const HELP = `usage: booksai-progress inspect <bookId> [--url URL] [--token TOKEN]

Prints where a book lives and what is held there: its Redis key, slot, node, dirty mark, TTL
and state (any Redis mode), then its database row, saved chapters and generation run. Reads the
server's variables (REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS, REDIS_KEY_PREFIX,
DATABASE_URL, DATA_DIR).

In the embedded default (no Redis, PGlite under DATA_DIR) the state lives inside the server
process, and its database may be opened by one process only: inspect asks the running server
at --url for both, and opens DATA_DIR itself when no server answers there.

${TARGET_HELP}`;

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'where a book lives: Redis key and state, database row, chapters, run',
  help: HELP,
  async run(argv) {
    const parsed = parse(argv, TARGET_OPTIONS, HELP, { min: 1, max: 1 });
    if (parsed === null) return EXIT_OK;
    const bookId = parsed.positionals[0] as string;
    if (!BookIdSchema.safeParse(bookId).success) throw new CliError(`"${bookId}" is not a bookId: 1-128 characters of A-Z, a-z, 0-9, "_" or "-"`);
    let config;
    try {
      config = loadConfig(process.env);
    } catch (error) {
      throw new CliError((error as Error).message);
    }
    const target = targetFrom(parsed.values);
    let answers: Promise<boolean> | null = null;
    const serverAnswers = () => (answers ??= probe(target));

    const lines: string[] = [];
    if (config.redisTarget !== null) lines.push(...(await redisLines(config.redisTarget, config.redisKeyPrefix, bookId)));
    else {
      lines.push('mode:      embedded (in-memory broker, inside the server process)');
      lines.push(`state:     ${(await serverAnswers()) ? await stateFromServer(target, bookId) : `none held: no server answers at ${target.url}, and the in-memory broker's states end with its process`}`);
    }
    if (config.databaseUrl !== null) lines.push(...(await postgresLines(config.databaseUrl, bookId)));
    else if (await serverAnswers()) lines.push(...(await bookFromServer(target, bookId, config.dataDir)));
    else lines.push(...(await pgliteLines(config.dataDir, bookId)));
    process.stdout.write(`${lines.join('\n')}\n`);
    return EXIT_OK;
  },
};

async function probe(target: Target): Promise<boolean> {
  try {
    return (await fetch(`${target.url}/healthz`, { signal: AbortSignal.timeout(PROBE_MS) })).ok;
  } catch {
    return false;
  }
}

/** GET with the caller's token: the body, null for a 404, CliError (exit 1) for another refusal. */
async function getJson(target: Target, path: string): Promise<{ data: unknown; source: string | null } | null> {
  let res: Response;
  try {
    res = await fetch(`${target.url}${path}`, { headers: headersFor(target), signal: AbortSignal.timeout(PROBE_MS * 2) });
  } catch (error) {
    throw new CliError(`cannot reach the server at ${target.url}: ${networkReason(error)}`);
  }
  if (res.status === 404) return null;
  if (!res.ok) throw new CliError(`the server at ${target.url} refused: ${await refusal(res)}`, EXIT_FAILED);
  const body = (await res.json()) as { data: unknown };
  return { data: body.data, source: res.headers.get('x-progress-source') };
}

async function stateFromServer(target: Target, bookId: string): Promise<string> {
  const found = await getJson(target, `/api/ai/progress/${bookId}`);
  if (found === null) return `none held (the server at ${target.url} has no progress for it)`;
  return `${block(found.data)}${found.source === null ? '' : `\nsource:    ${found.source} (as the server at ${target.url} answered)`}`;
}

interface BookView {
  bookId: string;
  title: string;
  owner: string | null;
  status: string;
  generationStep: string;
  run: string | null;
  createdAt: string;
  updatedAt: string;
  chapters: Array<{ number: number; title: string; content: string }>;
}

async function bookFromServer(target: Target, bookId: string, dataDir: string): Promise<string[]> {
  const head = `database:  embedded (PGlite under ${dataDir}, held by the server at ${target.url}: read through its books API)`;
  const found = await getJson(target, `/api/books/${bookId}`);
  if (found === null) return [head, 'row:       none (not snapshotted yet, or another tenant\'s book)', 'run:       none'];
  const { chapters, run, ...row } = found.data as BookView;
  delete (row as { progress?: unknown }).progress;
  return [
    head,
    `row:       ${block(row)}`,
    `chapters:  ${chapters.length === 0 ? 'none saved' : chapters.map((c) => `${c.number}. ${c.title} (${c.content.length} characters)`).join('\n           ')}`,
    `run:       ${run === null ? 'none (not generated by this service: an outside worker publishes it)' : run}`,
  ];
}
