import { afterEach, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { bookId, publish } from '../server/http.js';
import { REDIS_URL, createTestDatabase, uniquePrefix } from '../support/backends.js';
import { freePort } from '../support/ports.js';
import { serverForFile, startServer, startTestService } from '../support/service.js';
import { TEST_SECRET, mintToken } from '../support/tokens.js';
import { CliProcess, cli } from './cli.js';

const server = serverForFile({ DEMO_STEP_MS: '10' });
const running: CliProcess[] = [];
const extra: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const child of running.splice(0)) child.kill();
  for (const s of extra.splice(0)) await s.close();
});

function watch(args: string[], env: Record<string, string> = {}): CliProcess {
  const child = new CliProcess(['watch', ...args], env);
  running.push(child);
  return child;
}

async function ok(res: Promise<Response>): Promise<void> {
  expect((await res).status).toBe(200);
}

describe('booksai-progress watch, stdout not a terminal', () => {
  it('prints a line per update and exits 0 once every book is COMPLETE', async () => {
    const a = bookId('watch-a');
    const b = bookId('watch-b');
    const child = watch([a, b, '--url', server.url]);
    await ok(publish(server.url, a, { status: 'GENERATING', generationStep: 'CHAPTERS', currentChapter: 1, totalChapters: 4, message: 'Writing Chapter 1 of 4...' }));
    await child.waitFor(new RegExp(`^${a} GENERATING CHAPTERS \\d+\\.\\d% chapter 1/4 eta \\S+ v1 "Writing Chapter 1 of 4..."$`, 'm'));
    await ok(publish(server.url, a, { status: 'COMPLETE' }));
    await child.waitFor(new RegExp(`^${a} COMPLETE COMPLETE 100\\.0% chapter 4/4 eta done v2`, 'm'));
    await ok(publish(server.url, b, { status: 'COMPLETE', totalChapters: 2 }));
    const { code, stdout, stderr } = await child.result();
    expect(code).toBe(0);
    expect(stdout.trim().split('\n')).toHaveLength(3);
    expect(stdout).not.toMatch(/\x1b\[/); // no terminal control codes in a pipe
    expect(stderr).toBe('2 of 2 books COMPLETE\n');
  });

  it('follows a generation the CLI started, to its end', async () => {
    const started = await cli(['start', '--title', 'Watched', '--chapters', '2', '--url', server.url]);
    expect(started.code).toBe(0);
    const id = started.stdout.trim();
    const { code, stdout } = await cli(['watch', id, '--url', server.url]);
    expect(code).toBe(0);
    const versions = [...stdout.matchAll(/ v(\d+)/g)].map((m) => Number(m[1]));
    expect(versions).toEqual([...versions].sort((x, y) => x - y));
    expect(new Set(versions).size).toBe(versions.length);
    expect(stdout.trim().split('\n').at(-1)).toMatch(new RegExp(`^${id} COMPLETE COMPLETE 100\\.0% chapter 2/2`));
  });

  it('exits 1 when a book ends ERROR, once every book has ended, and says why on stderr', async () => {
    const failing = bookId('watch-err');
    const fine = bookId('watch-fine');
    await ok(publish(server.url, failing, { status: 'ERROR', error: 'the model refused' }));
    const child = watch([failing, fine, '--url', server.url]);
    await child.waitFor(new RegExp(`^${failing} ERROR`, 'm'));
    await ok(publish(server.url, fine, { status: 'COMPLETE' }));
    const { code, stdout, stderr } = await child.result();
    expect(code).toBe(1);
    expect(stdout).toContain('"the model refused"');
    expect(stderr).toBe(`${failing}: ERROR: the model refused\n1 of 2 books COMPLETE\n`);
  });

  it('exits 2 after retrying an unreachable server for seconds, and --timeout waits longer', async () => {
    const port = await freePort();
    const started = Date.now();
    const gone = await cli(['watch', bookId('unreachable'), '--url', `http://127.0.0.1:${port}`, '--timeout', '1']);
    const took = Date.now() - started;
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(new RegExp(`cannot reach the server at http://127.0.0.1:${port} \\(tried for 1 s\\): connect ECONNREFUSED`));
    expect(took).toBeGreaterThanOrEqual(1_000);
    expect(took).toBeLessThan(10_000);

    // The default gives up within seconds, not minutes.
    const byDefault = Date.now();
    expect((await cli(['watch', bookId('unreachable'), '--url', `http://127.0.0.1:${port}`], {}, 30_000)).code).toBe(2);
    expect(Date.now() - byDefault).toBeLessThan(20_000);

    // With a longer --timeout the server may come up meanwhile.
    const id = bookId('late');
    const child = watch([id, '--url', `http://127.0.0.1:${port}`, '--timeout', '60']);
    await child.waitFor(/retrying for up to 60 s/, 20_000, 'stderr');
    const late = await startTestService({ PORT: String(port), DATABASE_URL: (await databaseFor(extra)).url });
    extra.push(late);
    await ok(publish(late.url, id, { status: 'COMPLETE' }));
    expect((await child.result()).code).toBe(0);
  });

  it('resumes after the server restarts, showing each version once', async () => {
    const port = await freePort();
    const env = { PORT: String(port), REDIS_URL, REDIS_KEY_PREFIX: uniquePrefix(), DATABASE_URL: (await databaseFor(extra)).url };
    let first: Service | null = await startTestService(env);
    const id = bookId('resume');
    const child = watch([id, '--url', first.url]);
    await ok(publish(first.url, id, { status: 'GENERATING', message: 'one' }));
    await child.waitFor(/ v1 "one"/);
    await first.close();
    first = null;
    await child.waitFor(/retrying/, 20_000, 'stderr');
    const second = await startTestService(env);
    extra.push(second);
    await ok(publish(second.url, id, { message: 'two' }));
    await child.waitFor(/ v2 "two"/);
    await ok(publish(second.url, id, { status: 'COMPLETE' }));
    const { code, stdout } = await child.result();
    expect(code).toBe(0);
    expect([...stdout.matchAll(/ v(\d+)/g)].map((m) => m[1])).toEqual(['1', '2', '3']);
  });

  it('exits 2 with the server\'s reason when it refuses the watch', async () => {
    const secured = await startServer({ AUTH_JWT_SECRET: TEST_SECRET });
    extra.push(secured);
    const refused = await cli(['watch', bookId('secret'), '--url', secured.url, '--token', 'not-a-jwt']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^booksai-progress watch: the server refused to stream: 401 \w+: .+\n$/);

    const id = bookId('secret');
    const reader = await mintToken({ sub: 'ann', tenant: 'acme', scope: 'progress:read progress:write' });
    await ok(fetch(`${secured.url}/api/ai/progress/${id}`, { method: 'POST', headers: { Authorization: `Bearer ${reader}`, 'Content-Type': 'application/json' }, body: '{"status":"COMPLETE"}' }));
    expect((await cli(['watch', id, '--url', secured.url], { BOOKSAI_TOKEN: reader })).code).toBe(0);
  });

  it('refuses bad usage with exit 2 and one line', async () => {
    for (const args of [[], ['not a book id'], ['--timeout', 'soon', 'a'], ['a', '--url', 'ftp://x']]) {
      const result = await cli(['watch', ...args]);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
    const help = await cli(['watch', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: booksai-progress watch <bookId…>/);
  });
});

/** A database dropped after the test, for servers the test starts on a port of its own. */
async function databaseFor(closers: Array<{ close(): Promise<void> }>) {
  const database = await createTestDatabase();
  closers.push({ close: () => database.drop() });
  return database;
}
