import { BookIdSchema, BookProgressSchema, STATUSES, STEPS } from '../progress/schema.js';
import { CliError, EXIT_OK, parse } from './args.js';
import type { Command } from './args.js';
import { TARGET_HELP, TARGET_OPTIONS, callApi, targetFrom } from './client.js';
import { stateLine } from './progress-text.js';

const HELP = `usage: booksai-progress publish <bookId> [--status S] [--step S] [--chapter n/m] [--section n/m]
                                  [--message TEXT] [--error TEXT] [--progress P] [--tenant T] [--url URL] [--token TOKEN]

Publishes a progress update of a book (POST /api/ai/progress/<bookId>), as an outside worker
does, and prints the state the server committed. The server merges the fields given into the
book's state and derives the overall progress and ETA.

  --status S     ${STATUSES.join(' ')}
  --step S       ${STEPS.join(' ')}
  --chapter n/m  current chapter and the total ("2/10"; "2" keeps the total)
  --section n/m  current section of the chapter and its total
  --message TEXT for people
  --error TEXT   what failed (with --status ERROR)
  --progress P   overall progress 0-100 (default: derived by the server)
  --tenant T     X-Tenant, for a PUBLISH_TOKEN with authentication on
  --json         print the committed state as JSON
${TARGET_HELP}`;

/** "2/10" → [2, 10]; "2" → [2, undefined]. */
function counter(raw: string, flag: string): [number, number | undefined] {
  const match = /^(\d{1,6})(?:\/(\d{1,6}))?$/.exec(raw);
  if (!match) throw new CliError(`${flag} must be n or n/m with whole numbers, like 2/10 (got "${raw}")`);
  return [Number(match[1]), match[2] === undefined ? undefined : Number(match[2])];
}

function oneOf<T extends string>(raw: string, allowed: readonly T[], flag: string): T {
  if (!(allowed as readonly string[]).includes(raw)) throw new CliError(`${flag} must be one of ${allowed.join(', ')} (got "${raw}")`);
  return raw as T;
}

export const publishCommand: Command = {
  name: 'publish',
  summary: 'publish a progress update of a book, as a worker does',
  help: HELP,
  async run(argv) {
    const parsed = parse(
      argv,
      {
        ...TARGET_OPTIONS,
        status: { type: 'string' },
        step: { type: 'string' },
        chapter: { type: 'string' },
        section: { type: 'string' },
        message: { type: 'string' },
        error: { type: 'string' },
        progress: { type: 'string' },
        tenant: { type: 'string' },
        json: { type: 'boolean' },
      },
      HELP,
      { min: 1, max: 1 },
    );
    if (parsed === null) return EXIT_OK;
    const { values } = parsed;
    const bookId = parsed.positionals[0] as string;
    if (!BookIdSchema.safeParse(bookId).success) throw new CliError(`"${bookId}" is not a bookId: 1-128 characters of A-Z, a-z, 0-9, "_" or "-"`);
    const update: Record<string, unknown> = {};
    if (values.status !== undefined) update.status = oneOf(values.status, STATUSES, '--status');
    if (values.step !== undefined) update.generationStep = oneOf(values.step, STEPS, '--step');
    if (values.chapter !== undefined) {
      const [current, total] = counter(values.chapter, '--chapter');
      update.currentChapter = current;
      if (total !== undefined) update.totalChapters = total;
    }
    if (values.section !== undefined) {
      const [current, total] = counter(values.section, '--section');
      update.currentSection = current;
      if (total !== undefined) update.totalSections = total;
    }
    if (values.message !== undefined) update.message = values.message;
    if (values.error !== undefined) update.error = values.error;
    if (values.progress !== undefined) {
      const progress = Number(values.progress);
      if (values.progress.trim() === '' || !Number.isFinite(progress) || progress < 0 || progress > 100) throw new CliError(`--progress must be a number from 0 to 100 (got "${values.progress}")`);
      update.overallProgress = progress;
    }
    if (Object.keys(update).length === 0) throw new CliError('nothing to publish: give at least one of --status, --step, --chapter, --section, --message, --error, --progress (see --help)');
    const { data } = await callApi(targetFrom(values, values.tenant), 'POST', `/api/ai/progress/${bookId}`, update);
    const state = BookProgressSchema.parse(data);
    process.stdout.write(values.json === true ? `${JSON.stringify(state)}\n` : `${stateLine(state, Date.now())}\n`);
    return EXIT_OK;
  },
};
