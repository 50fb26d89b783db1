/**
 * The `booksai-progress` command line: `booksai-progress <command> [options]`, run by
 * bin/booksai-progress.js. A client of the HTTP API and, for `inspect`, of Redis and the database.
 */
import { adoptCommand } from './adopt.js';
import { CliError, EXIT_OK, EXIT_USAGE } from './args.js';
import type { Command } from './args.js';
import { cancelCommand, retryCommand, startCommand } from './generations.js';
import { inspectCommand } from './inspect.js';
import { publishCommand } from './publish.js';
import { tokenCommand } from './token.js';
import { watchCommand } from './watch.js';

const COMMANDS: readonly Command[] = [watchCommand, publishCommand, startCommand, cancelCommand, retryCommand, inspectCommand, tokenCommand, adoptCommand];

const OVERVIEW = `usage: booksai-progress <command> [options]

${COMMANDS.map((c) => `  ${c.name.padEnd(9)}${c.summary}`).join('\n')}

Run booksai-progress <command> --help for its options. Exit codes: 0 done, 1 failed
(a book ended ERROR, the server refused), 2 usage error or server unreachable.`;

/** Runs one command line; resolves to its exit code. Every failure is one line on stderr. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stderr.write(`${OVERVIEW}\n`);
    return EXIT_USAGE;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${OVERVIEW}\n`);
    return EXIT_OK;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    process.stderr.write(`booksai-progress: unknown command "${name}"; the commands are ${COMMANDS.map((c) => c.name).join(', ')} (see --help)\n`);
    return EXIT_USAGE;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    const code = error instanceof CliError ? error.exitCode : 1;
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`booksai-progress ${name}: ${message.split('\n')[0]}\n`);
    return code;
  }
}

// Open handles (a Redis client's reconnect timer, a keep-alive socket) must not outlive the answer.
process.exit(await main(process.argv.slice(2)));
