import { BookIdSchema, TenantSchema } from '../progress/schema.js';
import { CliError, EXIT_FAILED, EXIT_OK, parse } from './args.js';
import type { Command } from './args.js';
import { TARGET_HELP, TARGET_OPTIONS, callApi, targetFrom } from './client.js';

const HELP = `usage: booksai-progress adopt --tenant TENANT (<bookId>… | --all-untenanted) [--url URL] [--token TOKEN]

Gives books without a tenant (made while authentication was off) to TENANT, through the
server (POST /api/admin/adopt, an admin token): the database row and the state every
reader checks, so the tenant's tokens list and read them from now on. A book of another
tenant is left alone. Prints one line per book; exit 1 when a book named was refused.

  --tenant TENANT    the tenant the books go to (required)
  --all-untenanted   every book that has no tenant, instead of a list of ids
${TARGET_HELP}`;

interface AdoptAnswer {
  adopted: string[];
  unchanged: string[];
  refused: Array<{ bookId: string; reason: string }>;
}

/** Rounds of --all-untenanted at most (1,000 books each): a bound, not an expected count. */
const MAX_ROUNDS = 1_000;

export const adoptCommand: Command = {
  name: 'adopt',
  summary: 'give books without a tenant (open mode) to a tenant',
  help: HELP,
  async run(argv) {
    const parsed = parse(argv, { ...TARGET_OPTIONS, tenant: { type: 'string' }, 'all-untenanted': { type: 'boolean' } }, HELP, { min: 0, max: Infinity });
    if (parsed === null) return EXIT_OK;
    const { values, positionals } = parsed;
    if (values.tenant === undefined || !TenantSchema.safeParse(values.tenant).success) throw new CliError('--tenant is required: the tenant the books go to (see --help)');
    const all = values['all-untenanted'] === true;
    if (all === (positionals.length > 0)) throw new CliError('name the books, or give --all-untenanted (not both; see --help)');
    for (const bookId of positionals) {
      if (!BookIdSchema.safeParse(bookId).success) throw new CliError(`"${bookId}" is not a bookId: 1-128 characters of A-Z, a-z, 0-9, "_" or "-"`);
    }
    const target = targetFrom(values);
    const total: AdoptAnswer = { adopted: [], unchanged: [], refused: [] };
    for (let round = 0; round < (all ? MAX_ROUNDS : 1); round++) {
      const body = all ? { tenant: values.tenant, untenanted: true } : { tenant: values.tenant, books: positionals };
      const answer = (await callApi(target, 'POST', '/api/admin/adopt', body)).data as AdoptAnswer;
      for (const bookId of answer.adopted) process.stdout.write(`${bookId}\tadopted by ${values.tenant}\n`);
      for (const bookId of answer.unchanged) process.stdout.write(`${bookId}\talready ${values.tenant}'s\n`);
      for (const { bookId, reason } of answer.refused) process.stdout.write(`${bookId}\tnot adopted: ${reason}\n`);
      total.adopted.push(...answer.adopted);
      total.unchanged.push(...answer.unchanged);
      total.refused.push(...answer.refused);
      if (answer.adopted.length === 0) break;
    }
    process.stderr.write(`${total.adopted.length} adopted, ${total.unchanged.length} already the tenant's, ${total.refused.length} refused\n`);
    return total.refused.length > 0 && !all ? EXIT_FAILED : EXIT_OK;
  },
};
