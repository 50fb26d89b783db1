/**
 * Mints a development token signed with AUTH_JWT_SECRET:
 *   npm run token -- --sub alice --tenant acme --scope "progress:read books:write" [--books a,b] [--ttl 15m]
 * Prints the token alone on stdout, so `TOKEN=$(npm run -s token -- --sub alice)` works.
 */
import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import { loadConfig } from '../config.js';

const TTL = /^(\d+)(s|m|h|d)?$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3_600, d: 86_400 };

function fail(message: string): never {
  process.stderr.write(`token: ${message}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    sub: { type: 'string' },
    tenant: { type: 'string' },
    scope: { type: 'string' },
    books: { type: 'string' },
    ttl: { type: 'string', default: '15m' },
    issuer: { type: 'string' },
    audience: { type: 'string' },
  },
  strict: true,
});

let config;
try {
  config = loadConfig(process.env);
} catch (error) {
  fail((error as Error).message);
}
const secret = config.auth.secrets[0];
if (secret === undefined) fail('set AUTH_JWT_SECRET (32 bytes or more) to mint tokens');
if (values.sub === undefined || values.sub === '') fail('--sub is required: the user the token names');
const ttl = TTL.exec(values.ttl);
if (!ttl) fail(`--ttl must be a number with an optional unit s, m, h or d (got "${values.ttl}")`);
const seconds = Number(ttl[1]) * (UNIT_SECONDS[ttl[2] ?? 's'] as number);

const claims: Record<string, unknown> = {};
if (values.tenant !== undefined) claims.tenant = values.tenant;
if (values.scope !== undefined) claims.scope = values.scope;
if (values.books !== undefined) claims.books = values.books.split(',').filter((id) => id !== '');
const now = Math.floor(Date.now() / 1000);
let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(values.sub).setIssuedAt(now).setExpirationTime(now + seconds);
const issuer = values.issuer ?? config.auth.issuer;
const audience = values.audience ?? config.auth.audience;
if (issuer !== null) jwt = jwt.setIssuer(issuer);
if (audience !== null) jwt = jwt.setAudience(audience);
process.stdout.write(`${await jwt.sign(new TextEncoder().encode(secret))}\n`);
