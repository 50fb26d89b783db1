import { SignJWT } from 'jose';
import { SCOPES } from '../auth/caller.js';
import { MAX_BOOKS_CLAIM } from '../auth/tokens.js';
import { loadConfig } from '../config.js';
import { BookIdSchema } from '../progress/schema.js';
import { CliError, EXIT_OK, parse } from './args.js';
import type { Command } from './args.js';

const TTL = /^(\d+)(s|m|h|d)?$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3_600, d: 86_400 };

const HELP = `usage: booksai-progress token --sub USER [--tenant T] [--scope "S …"] [--books a,b] [--ttl 15m]
                              [--issuer I] [--audience A]

Mints a development token signed with AUTH_JWT_SECRET and prints it alone on stdout, so
TOKEN=$(booksai-progress token --sub alice) works.

  --sub USER     the user the token names (required)
  --tenant T     the tenant claim (default: the server takes sub)
  --scope "S …"  space-separated, of: ${SCOPES.join(' ')} (default progress:read)
  --books a,b    only these books
  --ttl D        lifetime: a number with an optional unit s, m, h or d (default 15m)
  --issuer I     iss (default AUTH_ISSUER)
  --audience A   aud (default AUTH_AUDIENCE)`;

export const tokenCommand: Command = {
  name: 'token',
  summary: 'mint a development token (AUTH_JWT_SECRET)',
  help: HELP,
  async run(argv) {
    const parsed = parse(
      argv,
      {
        sub: { type: 'string' },
        tenant: { type: 'string' },
        scope: { type: 'string' },
        books: { type: 'string' },
        ttl: { type: 'string', default: '15m' },
        issuer: { type: 'string' },
        audience: { type: 'string' },
      },
      HELP,
      { min: 0, max: 0 },
    );
    if (parsed === null) return EXIT_OK;
    const { values } = parsed;
    let config;
    try {
      config = loadConfig(process.env);
    } catch (error) {
      throw new CliError((error as Error).message);
    }
    const secret = config.auth.secrets[0];
    if (secret === undefined) throw new CliError('set AUTH_JWT_SECRET (32 bytes or more) to mint tokens');
    if (values.sub === undefined || values.sub === '') throw new CliError('--sub is required: the user the token names');
    const ttl = TTL.exec(values.ttl);
    if (!ttl) throw new CliError(`--ttl must be a number with an optional unit s, m, h or d (got "${values.ttl}")`);
    const seconds = Number(ttl[1]) * (UNIT_SECONDS[ttl[2] ?? 's'] as number);
    if (seconds === 0) throw new CliError('--ttl must be longer than 0');

    const claims: Record<string, unknown> = {};
    if (values.tenant !== undefined) claims.tenant = values.tenant;
    if (values.scope !== undefined) {
      const scopes = values.scope.split(/\s+/).filter((s) => s !== '');
      // The server ignores a scope it does not know: a typo would mint a token that silently cannot do what was asked.
      const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
      if (unknown.length > 0) throw new CliError(`--scope: unknown scope ${unknown.map((s) => `"${s}"`).join(', ')}; the scopes are ${SCOPES.join(', ')}`);
      if (scopes.length === 0) throw new CliError(`--scope must name at least one of ${SCOPES.join(', ')}`);
      claims.scope = scopes.join(' ');
    }
    if (values.books !== undefined) {
      const books = values.books.split(',').filter((id) => id !== '');
      const bad = books.find((id) => !BookIdSchema.safeParse(id).success);
      if (bad !== undefined) throw new CliError(`--books: "${bad}" is not a bookId: 1-128 characters of A-Z, a-z, 0-9, "_" or "-"`);
      if (books.length > MAX_BOOKS_CLAIM) throw new CliError(`--books lists at most ${MAX_BOOKS_CLAIM} books`);
      claims.books = books;
    }
    const now = Math.floor(Date.now() / 1000);
    let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(values.sub).setIssuedAt(now).setExpirationTime(now + seconds);
    const issuer = values.issuer ?? config.auth.issuer;
    const audience = values.audience ?? config.auth.audience;
    if (issuer !== null) jwt = jwt.setIssuer(issuer);
    if (audience !== null) jwt = jwt.setAudience(audience);
    process.stdout.write(`${await jwt.sign(new TextEncoder().encode(secret))}\n`);
    return EXIT_OK;
  },
};
