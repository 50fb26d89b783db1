// A minimal host application for booksai-progress: its own sign-in, the user's token minted with
// jose and handed to the browser as the HttpOnly `booksai_token` cookie, and a page of its own
// that starts books on the progress server and shows them live with `watch()` from web/client.ts.
// Run: `npm run example:host-app` starts it with a progress server of its own; with PROGRESS_URL it
// uses that one (started with the same AUTH_JWT_SECRET and CORS_ORIGINS=http://127.0.0.1:4000). See README.md.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { SignJWT } from 'jose';
import { appPage, loginPage } from './pages.js';
import { missingFor, startProgressServer } from './progress-server.js';

const PORT = Number(process.env.HOST_APP_PORT ?? 4000);
const ORIGIN = `http://127.0.0.1:${PORT}`;
/** Unset: this example starts a progress server of its own on PROGRESS_PORT, with a secret it shares with it. */
const OWN_PROGRESS_SERVER = !process.env.PROGRESS_URL;
const PROGRESS_PORT = Number(process.env.PROGRESS_PORT ?? 3000);
const PROGRESS_URL = (process.env.PROGRESS_URL ?? `http://127.0.0.1:${PROGRESS_PORT}`).replace(/\/$/, '');
const SECRET_TEXT = process.env.AUTH_JWT_SECRET ?? (OWN_PROGRESS_SERVER ? randomBytes(32).toString('hex') : '');
const SECRET = new TextEncoder().encode(SECRET_TEXT);
/** Optional: `example.com` when the app is app.example.com and the progress server progress.example.com. */
const COOKIE_DOMAIN = process.env.COOKIE_DOMAIN;
/** The progress token's lifetime (15 minutes); the page renews it every third of it (see page.ts). */
const TOKEN_TTL_SECONDS = Number(process.env.TOKEN_TTL_SECONDS ?? 15 * 60);
if (SECRET.length < 32) fail('AUTH_JWT_SECRET: set it to the progress server\'s secret (32+ bytes)');
if (!Number.isInteger(TOKEN_TTL_SECONDS) || TOKEN_TTL_SECONDS < 3) fail('TOKEN_TTL_SECONDS: a whole number of seconds, 3 or more');

const SESSION_TTL_MS = 8 * 60 * 60 * 1000;

/** The demo's users. A real app checks a password hash in its user store. */
const USERS = new Map([
  ['alice', { password: 'alice-password', tenant: 'acme' }],
  ['bob', { password: 'bob-password', tenant: 'globex' }],
]);

/**
 * The host app's own sessions (in memory: a real app keeps them in its store). They outlive the
 * progress token, which is minted anew from the session whenever the page asks.
 */
const sessions = new Map<string, { user: string; expires: number }>();

/** The browser bundle of page.ts (with web/client.ts), built once at start. */
const pageScript = await bundlePage();

if (OWN_PROGRESS_SERVER) {
  await startProgressServer(PROGRESS_PORT, SECRET_TEXT, ORIGIN).catch((error: Error) => fail(`PROGRESS_PORT: ${error.message}`));
} else {
  for (const line of await missingFor(PROGRESS_URL, ORIGIN, await mintToken('alice'))) console.error(`warning: ${line}`);
}

const server = createServer((req, res) => {
  route(req, res).catch((error: unknown) => {
    console.error(error);
    if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
    res.end('internal error');
  });
});
server.on('error', (error: NodeJS.ErrnoException) => fail(`HOST_APP_PORT: cannot listen on 127.0.0.1:${PORT} (${error.code ?? error.message})`));
// Loopback only: this is a demo with passwords in the source.
server.listen(PORT, '127.0.0.1', () => console.log(`host app on http://127.0.0.1:${PORT}, progress server ${PROGRESS_URL}`));

async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://host').pathname;
  const session = currentSession(req);
  if (req.method === 'GET' && path === '/') {
    if (!session) return html(res, 200, loginPage());
    return html(res, 200, appPage({ user: session.user, tenant: tenantOf(session.user), progressUrl: PROGRESS_URL, renewMs: (TOKEN_TTL_SECONDS * 1000) / 3 }));
  }
  if (req.method === 'GET' && path === '/page.js') {
    res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-cache' }).end(pageScript);
    return;
  }
  if (req.method === 'GET' && path === '/healthz') {
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
    return;
  }
  if (req.method === 'POST' && path === '/login') {
    const body = await readBody(req);
    if (body === null) return void res.writeHead(413).end();
    const form = new URLSearchParams(body);
    const user = form.get('user') ?? '';
    if (USERS.get(user)?.password !== form.get('password')) return html(res, 401, loginPage('Unknown user or wrong password.'));
    const id = randomBytes(32).toString('base64url');
    sessions.set(id, { user, expires: Date.now() + SESSION_TTL_MS });
    res.setHeader('Set-Cookie', [cookie(req, 'host_session', id, SESSION_TTL_MS / 1000), cookie(req, 'booksai_token', await mintToken(user), TOKEN_TTL_SECONDS)]);
    return redirect(res, '/');
  }
  if (req.method === 'POST' && path === '/session/refresh') {
    // The page calls this before the progress token expires: a fresh one, as long as the session lives.
    if (!session) return void res.writeHead(401).end();
    res.setHeader('Set-Cookie', cookie(req, 'booksai_token', await mintToken(session.user), TOKEN_TTL_SECONDS));
    return void res.writeHead(204).end();
  }
  if (req.method === 'POST' && path === '/logout') {
    const id = cookies(req).get('host_session');
    if (id) sessions.delete(id);
    res.setHeader('Set-Cookie', [cookie(req, 'host_session', '', 0), cookie(req, 'booksai_token', '', 0)]);
    return redirect(res, '/');
  }
  res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
}

/** The user's token for the progress server, with the claims it reads (docs/security.md, "The token"). */
function mintToken(user: string): Promise<string> {
  return new SignJWT({ tenant: tenantOf(user), scope: 'progress:read books:write' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(user)
    .setIssuedAt()
    .setExpirationTime(`${TOKEN_TTL_SECONDS}s`)
    .sign(SECRET);
}

function tenantOf(user: string): string {
  return USERS.get(user)?.tenant ?? user;
}

/**
 * A cookie as docs/security.md asks. HttpOnly: no script on the page (an XSS, a third-party
 * library) can read the token. SameSite=Lax: other sites' pages do not get it attached to their
 * requests (sibling subdomains and other ports of one host are the same site, so the progress
 * server gets it). Secure only over https: it keeps the token off plain-HTTP connections, where
 * anyone on the network could read it, and a browser would not store a Secure cookie from a
 * plain-http page other than localhost, so the demo on http://127.0.0.1 goes without it.
 * Max-Age 0 clears the cookie.
 */
function cookie(req: IncomingMessage, name: string, value: string, maxAgeSeconds: number): string {
  const https = req.headers['x-forwarded-proto'] === 'https' || 'encrypted' in req.socket;
  const domain = name === 'booksai_token' && COOKIE_DOMAIN ? `; Domain=${COOKIE_DOMAIN}` : '';
  return `${name}=${value}; HttpOnly; SameSite=Lax; Path=/; Max-Age=${maxAgeSeconds}${domain}${https ? '; Secure' : ''}`;
}

function currentSession(req: IncomingMessage): { user: string } | null {
  const id = cookies(req).get('host_session');
  const session = id === undefined ? undefined : sessions.get(id);
  if (!session) return null;
  if (session.expires < Date.now()) {
    sessions.delete(id as string);
    return null;
  }
  return session;
}

function cookies(req: IncomingMessage): Map<string, string> {
  const found = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0) found.set(part.slice(0, at).trim(), part.slice(at + 1).trim());
  }
  return found;
}

function html(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }).end(body);
}

/** 303: the browser follows a POST's answer with a GET, so a reload does not post the form again. */
function redirect(res: ServerResponse, location: string): void {
  res.writeHead(303, { Location: location }).end();
}

function fail(message: string): never {
  console.error(message);
  process.exit(1);
}

/** The form's body, or null past 10 kB (a sign-in form is far smaller). */
async function readBody(req: IncomingMessage): Promise<string | null> {
  let body = '';
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > 10_000) return null;
  }
  return body;
}

async function bundlePage(): Promise<string> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL('page.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'warning',
  });
  return result.outputFiles[0]?.text ?? '';
}
