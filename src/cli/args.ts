import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';

/**
 * A failure the command line reports as one line on stderr, with its exit code: 2 for a usage
 * error or a server that cannot be reached (the default), 1 for a request the server refused.
 */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly exitCode: number;

  constructor(message: string, exitCode = 2) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** Exit codes shared by every subcommand. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

type Options = NonNullable<ParseArgsConfig['options']>;
type HelpOption = { help: { type: 'boolean'; short: 'h' } };
type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O & HelpOption; allowPositionals: true; strict: true }>>;

/** What one subcommand is: its name, one line for the overview, its help, and how to run it. */
export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly help: string;
  /** `argv`: the arguments after the subcommand's name. Resolves to the exit code. */
  run(argv: string[]): Promise<number>;
}

/**
 * parseArgs with the house conventions: `--help`/`-h` prints `help` and answers null (exit 0),
 * and an unknown option or a missing value is a CliError naming it, not a stack trace.
 */
export function parse<const O extends Options>(argv: string[], options: O, help: string, positionals: { min: number; max: number }): Parsed<O> | null {
  const all = { ...options, help: { type: 'boolean', short: 'h' } } as O & HelpOption;
  let parsed: Parsed<O>;
  try {
    parsed = parseArgs({ args: argv, options: all, allowPositionals: true as const, strict: true as const });
  } catch (error) {
    // Node's messages say what is wrong and often how to fix it; the trailing hint is theirs.
    throw new CliError(`${(error as Error).message.split('\n')[0]} (see --help)`);
  }
  if ((parsed.values as { help?: boolean }).help === true) {
    process.stdout.write(help.endsWith('\n') ? help : `${help}\n`);
    return null;
  }
  const count = parsed.positionals.length;
  if (count < positionals.min || count > positionals.max) {
    const expected = positionals.min === positionals.max ? `${positionals.min}` : positionals.max === Infinity ? `at least ${positionals.min}` : `${positionals.min} to ${positionals.max}`;
    throw new CliError(`expected ${expected} argument${positionals.max === 1 ? '' : 's'}, got ${count}${count > 0 ? ` (${parsed.positionals.join(' ')})` : ''} (see --help)`);
  }
  return parsed;
}

/** A whole number of `what` in [min, max], from an option's text. */
export function integerOption(raw: string, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) throw new CliError(`${what} must be a whole number from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`} (got "${raw}")`);
  return Number(raw);
}
