// The progress server the example talks to: started here when PROGRESS_URL is not given, so that
// `npm run example:host-app` works as given; checked when it is, saying what is missing.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const START_TIMEOUT_MS = 60_000;

/** Starts `src/main.ts` on `port` with the secret and this app's origin allowed; resolves once it is ready. */
export async function startProgressServer(port: number, secret: string, hostOrigin: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', AUTH_JWT_SECRET: secret, CORS_ORIGINS: hostOrigin, DATA_DIR: process.env.DATA_DIR ?? 'data/host-app-example' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const stop = () => child.kill('SIGTERM');
  // The progress server ends with this app, however it is stopped.
  process.once('exit', stop);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(0));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the progress server exited with ${child.exitCode} (see its lines above)`);
    if (await fetch(`http://127.0.0.1:${port}/readyz`).then((res) => res.ok, () => false)) return child;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  stop();
  throw new Error(`the progress server did not answer /readyz on port ${port} within ${START_TIMEOUT_MS / 1000} s`);
}

/** What keeps the page from working with the progress server at `url`: one line each, none when all is well. */
export async function missingFor(url: string, hostOrigin: string, token: string): Promise<string[]> {
  const reached = await fetch(`${url}/healthz`).then((res) => res.ok, () => false);
  if (!reached) return [`the progress server does not answer at ${url} (PROGRESS_URL): start it, e.g. \`AUTH_JWT_SECRET=… CORS_ORIGINS=${hostOrigin} npm start\`, or leave PROGRESS_URL unset to have this example start one`];
  const missing: string[] = [];
  const preflight = await fetch(`${url}/api/books`, { method: 'OPTIONS', headers: { Origin: hostOrigin, 'Access-Control-Request-Method': 'POST' } });
  if (preflight.headers.get('access-control-allow-origin') !== hostOrigin) {
    missing.push(`the progress server does not allow this page's origin: start it with CORS_ORIGINS=${hostOrigin}`);
  }
  const books = await fetch(`${url}/api/books`, { headers: { Authorization: `Bearer ${token}` } });
  if (books.status === 401) missing.push('the progress server refuses this app\'s tokens: give both the same AUTH_JWT_SECRET');
  return missing;
}
