import { BookIdSchema, BookProgressSchema } from '../progress/schema.js';
import { CliError, EXIT_OK, integerOption, parse } from './args.js';
import type { Command } from './args.js';
import { TARGET_HELP, TARGET_OPTIONS, callApi, targetFrom } from './client.js';
import { stateLine } from './progress-text.js';

/** The durable-generations endpoints of /api/books: start, cancel, retry (a `books:write` token with authentication on). */

const START_HELP = `usage: booksai-progress start --title TITLE [--chapters N] [--sections N] [--url URL] [--token TOKEN]

Starts a generation by the server's demo generator (POST /api/books) and prints the new
book's id alone on stdout, so BOOK=$(booksai-progress start --title "My book") works.

  --title TITLE  the book's title (required)
  --chapters N   chapters to generate (server default 5)
  --sections N   sections per chapter (server default 3)
${TARGET_HELP}`;

export const startCommand: Command = {
  name: 'start',
  summary: 'start a generation; prints the new bookId',
  help: START_HELP,
  async run(argv) {
    const parsed = parse(argv, { ...TARGET_OPTIONS, title: { type: 'string' }, chapters: { type: 'string' }, sections: { type: 'string' } }, START_HELP, { min: 0, max: 0 });
    if (parsed === null) return EXIT_OK;
    const { values } = parsed;
    if (values.title === undefined || values.title.trim() === '') throw new CliError('--title is required: the book\'s title (see --help)');
    const body: Record<string, unknown> = { title: values.title };
    if (values.chapters !== undefined) body.chapters = integerOption(values.chapters, '--chapters', 1);
    if (values.sections !== undefined) body.sectionsPerChapter = integerOption(values.sections, '--sections', 1);
    const { data } = await callApi(targetFrom(values), 'POST', '/api/books', body);
    process.stdout.write(`${(data as { bookId: string }).bookId}\n`);
    return EXIT_OK;
  },
};

function bookAction(name: 'cancel' | 'retry', summary: string, details: string): Command {
  const help = `usage: booksai-progress ${name} <bookId> [--url URL] [--token TOKEN]

${details}
Exit 1 when the server refuses (404 unknown book, 409 a book in the wrong state).

${TARGET_HELP}`;
  return {
    name,
    summary,
    help,
    async run(argv) {
      const parsed = parse(argv, TARGET_OPTIONS, help, { min: 1, max: 1 });
      if (parsed === null) return EXIT_OK;
      const bookId = parsed.positionals[0] as string;
      if (!BookIdSchema.safeParse(bookId).success) throw new CliError(`"${bookId}" is not a bookId: 1-128 characters of A-Z, a-z, 0-9, "_" or "-"`);
      const { status, data } = await callApi(targetFrom(parsed.values), 'POST', `/api/books/${bookId}/${name}`);
      const state = BookProgressSchema.safeParse(data);
      process.stdout.write(state.success ? `${stateLine(state.data, Date.now())}\n` : `${JSON.stringify(data)}\n`);
      if (name === 'cancel' && status === 202) process.stderr.write('cancelled; its final state is still being written (a backend is slow)\n');
      return EXIT_OK;
    },
  };
}

export const cancelCommand = bookAction('cancel', 'cancel a generation (POST /api/books/<bookId>/cancel)', 'Cancels the book\'s generation and prints the state it ends in.');
export const retryCommand = bookAction('retry', 'retry a failed or cancelled generation', 'Queues the book\'s generation again, from its saved chapters, and prints its new state.');
