import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { REDIS_URL, createTestDatabase, uniquePrefix } from '../support/backends.js';
import type { TestDatabase } from '../support/backends.js';
import { Watch } from '../support/events.js';
import { RedisCluster, RedisSentinels } from '../support/redis-cluster.js';
import { startTestService } from '../support/service.js';
import { TextWatch } from '../support/text.js';
import { TEST_SECRET, mintToken } from '../support/tokens.js';
import { until } from '../support/wait.js';

/** Debian's python3 has python3-redis (4.3.4); another python3 first on PATH may not. */
const PYTHON = process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const MODULE_DIR = fileURLToPath(new URL('../../clients/python', import.meta.url));

/** Runs the module in python3: `spec` says how to connect and what to call; answers its JSON result. */
const DRIVER = `
import json, sys
import booksai_progress as b
spec = json.load(sys.stdin)
options = {"prefix": spec["prefix"], "tenant": spec.get("tenant")}
if "pubsub" in spec:
    options["pubsub"] = spec["pubsub"]
if "max_section_bytes" in spec:
    options["max_section_bytes"] = spec["max_section_bytes"]
if "saved" in spec:
    options["last_saved"] = lambda book_id: (spec["saved"]["progress"], spec["saved"]["version"])
mode = spec["mode"]
if mode == "http":
    token = None if spec.get("anonymous") else spec.get("token") or b.mint_token(spec["secret"], "worker", tenant=spec.get("tenant"))
    p = b.HttpPublisher(spec["url"], token=token)
elif mode == "single":
    p = b.RedisPublisher.single(spec["url"], **options)
elif mode == "sentinel":
    p = b.RedisPublisher.sentinel([("127.0.0.1", port) for port in spec["sentinels"]], spec["master"], **options)
else:
    p = b.RedisPublisher.cluster_of([("127.0.0.1", port) for port in spec["nodes"]], **options)
call = spec["call"]


def text(ops):
    """Runs appends and resets as a worker does: each offset the length the last append answered."""
    lengths, results = {}, []
    for op in ops:
        at = (op["chapter"], op["section"])
        try:
            if op["op"] == "begin":
                results.append({"attempt": p.begin_section(spec["book"], *at, fence=op.get("fence"))})
                lengths[at] = 0
                continue
            offset = op.get("offset", lengths.get(at, 0))
            lengths[at] = p.append_text(spec["book"], *at, offset, op["text"], reset=op.get("reset", False), fence=op.get("fence"))
            results.append({"length": lengths[at]})
        except b.TextRefused as error:
            results.append({"refused": error.code, "length": error.length, "type": type(error).__name__})
        except b.HttpError as error:
            results.append({"http": error.status, "code": error.code})
    return results


try:
    if call == "text":
        print(json.dumps({"text": text(spec["ops"])}))
        sys.exit(0)
    if call == "complete":
        result = p.complete(spec["book"], **spec.get("fields", {}))
    elif call == "fail":
        result = p.fail(spec["book"], spec["error"])
    else:
        result = p.publish(spec["book"], **spec.get("fields", {}))
    answer = {"state": result}
    if mode != "http":
        answer["ttl"] = p.client.ttl(b.names(spec["prefix"], spec["book"], p.cluster)["state"])
    print(json.dumps(answer))
except b.InvalidState as error:
    print(json.dumps({"invalid": str(error)}))
except b.HttpError as error:
    print(json.dumps({"http": error.status, "code": error.code}))
`;

type Spec = Record<string, unknown>;
interface Answer {
  state?: BookProgress;
  /** TTL of the book's state key after the call (publishers through Redis). */
  ttl?: number;
  invalid?: string;
  http?: number;
  code?: string;
  /** One result per text operation (call: 'text'). */
  text?: TextResult[];
}

type TextResult = { length: number } | { attempt: number } | { refused: string; length: number | null; type: string } | { http: number; code: string };
type TextOp = { op: 'append' | 'begin'; chapter: number; section: number; text?: string; offset?: number; reset?: boolean; fence?: number };

/** Waits until the reader's copy satisfies `done`, naming what it holds when it does not. */
async function received(watch: TextWatch, done: () => boolean): Promise<void> {
  await until(done, 5_000, 'the text on the stream').catch((error: Error) => {
    const held = [...watch.copy.sections].map(([key, { attempt, bytes: b }]) => `${key} attempt ${attempt}: ${JSON.stringify(b.toString())}`);
    throw new Error(`${error.message}; the reader holds ${held.join(', ') || 'nothing'} (faults: ${watch.copy.faults.join('; ') || 'none'})`);
  });
}

const texts = (spec: Spec, book: string, ops: TextOp[]) => python({ ...spec, book, call: 'text', ops });
const bytes = (text: string) => Buffer.byteLength(text, 'utf8');
/** Chunks with characters of 1 to 4 UTF-8 bytes: offsets count bytes, not characters. */
const CHUNKS = ['Él dijo «hola» ', '— 你好, ', 'the 🙂 of it', '\nand "quoted" on.'];

function python(spec: Spec): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, ['-c', DRIVER], { env: { ...process.env, PYTHONPATH: MODULE_DIR }, timeout: 20_000 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`python3 failed: ${error.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').at(-1)!) as Answer);
    });
    child.stdin!.end(JSON.stringify({ call: 'publish', ...spec }));
  });
}

interface Setup {
  service: Service;
  database: TestDatabase;
  sql: postgres.Sql;
  spec: Spec;
}

let cluster: RedisCluster;
let sentinels: RedisSentinels;
const setups = new Map<string, Setup>();

async function start(mode: string, env: Record<string, string | undefined>, spec: Spec): Promise<void> {
  const database = await createTestDatabase();
  // Snapshot rounds far apart: what reaches Postgres meanwhile was written at once.
  const service = await startTestService({ DATABASE_URL: database.url, SNAPSHOT_INTERVAL_MS: '3600000', MAX_GENERATIONS: '0', ...env });
  setups.set(mode, { service, database, sql: postgres(database.url, { max: 1, onnotice: () => {} }), spec });
}

beforeAll(async () => {
  [cluster, sentinels] = await Promise.all([RedisCluster.start(), RedisSentinels.start()]);
  const single = uniquePrefix();
  const sentinelPrefix = uniquePrefix();
  const clusterPrefix = uniquePrefix();
  const classicPrefix = uniquePrefix();
  await Promise.all([
    start('single', { REDIS_KEY_PREFIX: single }, { mode: 'single', url: REDIS_URL, prefix: single, tenant: null }),
    start('sentinel', { REDIS_URL: undefined, REDIS_SENTINELS: sentinels.sentinels, REDIS_SENTINEL_MASTER: RedisSentinels.MASTER_NAME, REDIS_KEY_PREFIX: sentinelPrefix }, {
      mode: 'sentinel',
      sentinels: sentinels.sentinelPorts,
      master: RedisSentinels.MASTER_NAME,
      prefix: sentinelPrefix,
    }),
    start('cluster', { REDIS_URL: undefined, REDIS_CLUSTER_NODES: cluster.seeds, REDIS_KEY_PREFIX: clusterPrefix }, { mode: 'cluster', nodes: cluster.ports, prefix: clusterPrefix }),
    // The module's pubsub="classic": PUBLISH on a cluster, for a server with REDIS_CLUSTER_PUBSUB=classic.
    start('cluster-classic', { REDIS_URL: undefined, REDIS_CLUSTER_NODES: cluster.seeds, REDIS_CLUSTER_PUBSUB: 'classic', REDIS_KEY_PREFIX: classicPrefix }, {
      mode: 'cluster',
      nodes: cluster.ports,
      prefix: classicPrefix,
      pubsub: 'classic',
    }),
  ]);
  const http = uniquePrefix();
  await start('http', { REDIS_KEY_PREFIX: http, AUTH_JWT_SECRET: TEST_SECRET, MAX_SECTION_TEXT_BYTES: '1024' }, { mode: 'http', secret: TEST_SECRET, tenant: 'acme', prefix: http });
  const publisher = setups.get('http')!;
  publisher.spec.url = publisher.service.url;
}, 120_000);

afterAll(async () => {
  for (const { service, database, sql } of setups.values()) {
    await service.close();
    await sql.end();
    await database.drop();
  }
  await Promise.all([cluster?.stop(), sentinels?.stop()]);
}, 60_000);

async function saved(setup: Setup, bookId: string): Promise<{ status: string; version: number } | undefined> {
  const rows = await setup.sql<Array<{ status: string; version: number }>>`SELECT status, version FROM books WHERE id = ${bookId}`;
  return rows[0];
}

async function listed(setup: Setup, bookId: string, token?: string): Promise<{ status: string } | undefined> {
  const response = await fetch(`${setup.service.url}/api/books?limit=100`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  const body = (await response.json()) as { data: Array<{ bookId: string; status: string }> };
  return body.data.find((book) => book.bookId === bookId);
}

describe.each(['single', 'sentinel', 'cluster', 'cluster-classic'])('booksai_progress.py, RedisPublisher (%s)', (mode) => {
  const setup = () => setups.get(mode)!;

  it('publishes versions 1-4 that a real EventSource on the server receives, and Postgres gets the first and the terminal one at once', async () => {
    const { service, spec } = setup();
    const book = `py-${mode}`;
    const watch = new Watch(`${service.url}/api/ai/progress/${book}/stream`);
    try {
      await watch.opened();
      const first = await python({ ...spec, book, fields: { status: 'PLANNING', message: 'Planning' } });
      expect(first.state).toMatchObject({ bookId: book, version: 1 });
      expect(Object.keys(first.state!).at(-1)).toBe('version');
      await watch.version(1);
      await until(async () => (await saved(setup(), book))?.version === 1, 5_000, 'the first state in Postgres');
      expect(await listed(setup(), book)).toMatchObject({ status: 'PLANNING' });

      const writing = await python({ ...spec, book, fields: { status: 'GENERATING', generationStep: 'CHAPTERS', currentChapter: 1, totalChapters: 3, overallProgress: 20, message: 'Writing Chapter 1 of 3...' } });
      expect(writing.ttl).toBeGreaterThan(86_000);
      await watch.version(2);
      await python({ ...spec, book, fields: { currentChapter: 2, overallProgress: 50, message: 'Writing Chapter 2 of 3...' } });
      await watch.version(3);
      expect((await saved(setup(), book))?.version).toBe(1);
      const done = await python({ ...spec, book, call: 'complete' });
      expect(done.state).toMatchObject({ status: 'COMPLETE', currentChapter: 3, totalChapters: 3, overallProgress: 100, version: 4 });
      // A finished book's state is kept for the terminal TTL (terminal_ttl_seconds, 3600), not 24 h.
      expect(done.ttl).toBeGreaterThan(3_500);
      expect(done.ttl).toBeLessThanOrEqual(3_600);
      await watch.version(4);
      expect(watch.states.map((s) => s.version)).toEqual([1, 2, 3, 4]);
      await until(async () => (await saved(setup(), book))?.status === 'COMPLETE', 5_000, 'the terminal state in Postgres');
      expect(await saved(setup(), book)).toEqual({ status: 'COMPLETE', version: 4 });
    } finally {
      watch.source.close();
    }
  }, 60_000);

  it('is refused an invalid state, which never becomes the book\'s state', async () => {
    const { service, spec } = setup();
    const book = `py-invalid-${mode}`;
    await python({ ...spec, book, fields: { status: 'GENERATING', totalChapters: 2, message: 'ok' } });
    const refused = await python({ ...spec, book, fields: { currentChapter: 3, totalChapters: 0 } });
    expect(refused).toEqual({ invalid: 'currentChapter must not exceed totalChapters' });
    const poll = (await (await fetch(`${service.url}/api/ai/progress/${book}`)).json()) as { data: BookProgress };
    expect(poll.data).toMatchObject({ version: 1, totalChapters: 2, message: 'ok' });
  }, 30_000);
});

describe.each(['single', 'sentinel', 'cluster', 'cluster-classic'])('booksai_progress.py, live text through RedisPublisher (%s)', (mode) => {
  const setup = () => setups.get(mode)!;

  it('appends text that a real EventSource with ?text=1 receives byte for byte and in order; a retry with the old offset, one past the limit and a lower fence are refused with the length', async () => {
    const { service, spec } = setup();
    const book = `py-text-${mode}`;
    await python({ ...spec, book, fields: { status: 'GENERATING', generationStep: 'CHAPTERS', currentChapter: 1, totalChapters: 2, message: 'Writing Chapter 1 of 2...' } });
    const watch = new TextWatch(`${service.url}/api/ai/progress/${book}/stream?text=1`);
    try {
      await watch.opened;
      const whole = CHUNKS.join('');
      const lengths = CHUNKS.map((_, i) => bytes(CHUNKS.slice(0, i + 1).join('')));
      const first = await python({ ...spec, book, call: 'text', max_section_bytes: 1024, ops: [
        ...CHUNKS.map((text): TextOp => ({ op: 'append', chapter: 1, section: 1, text })),
        // The last append retried (its first try landed): refused, never doubled.
        { op: 'append', chapter: 1, section: 1, offset: lengths[2], text: CHUNKS[3]! },
        { op: 'append', chapter: 1, section: 1, offset: lengths[3], text: 'x'.repeat(1024 - lengths[3]! + 1) },
        { op: 'append', chapter: 1, section: 2, text: 'Section two.', fence: 5 },
        { op: 'append', chapter: 1, section: 2, offset: bytes('Section two.'), text: ' Stale.', fence: 3 },
        // Without a fence an outside worker is never fenced; its last chunk tells the reader that all has come.
        { op: 'append', chapter: 1, section: 2, text: ' More.' },
      ] });
      expect(first.text).toEqual([
        ...lengths.map((length) => ({ length })),
        { refused: 'offset_mismatch', type: 'OffsetMismatch', length: lengths[3] },
        { refused: 'text_too_large', type: 'TextTooLarge', length: lengths[3] },
        { length: bytes('Section two.') },
        { refused: 'fenced', type: 'Fenced', length: null },
        { length: bytes('Section two. More.') },
      ]);
      await received(watch, () => watch.copy.text(book, 1, 2) === 'Section two. More.');
      expect(watch.copy.text(book, 1, 1)).toBe(whole);
      expect(watch.copy.faults).toEqual([]);
      // The server reads the sections from the keys the module wrote.
      const chapter = (await (await fetch(`${service.url}/api/books/${book}/chapters/1`)).json()) as { data: { text: string; saved: boolean } };
      expect(chapter.data).toMatchObject({ saved: false, text: `${whole}\n\nSection two. More.` });

      // Starting over: readers get a reset (attempt 2), then only the new text.
      const again = await texts(spec, book, [
        { op: 'begin', chapter: 1, section: 1 },
        { op: 'append', chapter: 1, section: 1, offset: lengths[3], text: ' Stale.' },
        { op: 'append', chapter: 1, section: 1, text: 'Über again.' },
      ]);
      expect(again.text).toEqual([{ attempt: 2 }, { refused: 'offset_mismatch', type: 'OffsetMismatch', length: 0 }, { length: bytes('Über again.') }]);
      await received(watch, () => watch.copy.sections.get(`${book}/1:1`)?.attempt === 2 && watch.copy.bytes(book, 1, 1) === bytes('Über again.'));
      expect(watch.copy.text(book, 1, 1)).toBe('Über again.');
      expect(watch.copy.faults).toEqual([]);
    } finally {
      watch.close();
    }
  }, 60_000);
});

describe('booksai_progress.py when the key is missing', () => {
  it('continues from the state and version Postgres saved (LAST_SAVED_SQL), merged', async () => {
    const setup = setups.get('single')!;
    const book = 'py-missing';
    const { spec } = setup;
    await python({ ...spec, book, fields: { status: 'GENERATING', totalChapters: 5, currentChapter: 2, message: 'two' } });
    await python({ ...spec, book, call: 'fail', error: 'the model refused' });
    await until(async () => (await saved(setup, book))?.status === 'ERROR', 5_000, 'the terminal state in Postgres');
    const redis = new Redis(REDIS_URL);
    try {
      await redis.del(`${spec.prefix as string}progress:${book}`);
    } finally {
      await redis.quit();
    }
    const [row] = await setup.sql.unsafe<Array<{ progress: BookProgress; version: number }>>('SELECT progress, version FROM books WHERE id = $1', [book]);
    const next = await python({ ...spec, book, saved: row, fields: { status: 'GENERATING', currentChapter: 3, message: 'three' } });
    expect(next.state).toMatchObject({ version: 3, totalChapters: 5, currentChapter: 3, status: 'GENERATING', message: 'three' });
    expect(next.state).not.toHaveProperty('error');
  }, 30_000);
});

describe('booksai_progress.py, HttpPublisher with a token minted by the standard library', () => {
  it('publishes through the server, which a reader of the tenant receives; 401 with a forged token', async () => {
    const setup = setups.get('http')!;
    const book = 'py-http';
    const reader = await mintToken({ sub: 'reader', tenant: 'acme', scope: 'progress:read' });
    const first = await python({ ...setup.spec, book, fields: { status: 'GENERATING', totalChapters: 2, currentChapter: 1, message: 'one' } });
    expect(first.state).toMatchObject({ tenant: 'acme', version: 1 });
    const watch = new Watch(`${setup.service.url}/api/ai/progress/${book}/stream?access_token=${reader}`);
    try {
      await watch.version(1);
      await python({ ...setup.spec, book, call: 'complete' });
      expect(await watch.version(2)).toMatchObject({ status: 'COMPLETE', overallProgress: 100 });
    } finally {
      watch.source.close();
    }
    expect(await python({ ...setup.spec, book, secret: 'another-secret-of-32-bytes-long!' })).toMatchObject({ http: 401, code: 'invalid_token' });
    const admin = await mintToken({ sub: 'ops', scope: 'admin' });
    expect(await listed(setup, book, admin)).toMatchObject({ status: 'COMPLETE' });
  }, 30_000);

  it('appends live text through the server, which a reader of the tenant receives; the same refusals; a forged or another tenant\'s token is refused', async () => {
    const setup = setups.get('http')!;
    const book = 'py-http-text';
    await python({ ...setup.spec, book, fields: { status: 'GENERATING', generationStep: 'CHAPTERS', totalChapters: 1, currentChapter: 1, message: 'one' } });
    const reader = await mintToken({ sub: 'reader', tenant: 'acme', scope: 'progress:read' });
    const watch = new TextWatch(`${setup.service.url}/api/ai/progress/${book}/stream?text=1&access_token=${reader}`);
    try {
      await watch.opened;
      const lengths = CHUNKS.map((_, i) => bytes(CHUNKS.slice(0, i + 1).join('')));
      const out = await texts(setup.spec, book, [
        ...CHUNKS.map((text): TextOp => ({ op: 'append', chapter: 1, section: 1, text })),
        { op: 'append', chapter: 1, section: 1, offset: lengths[2], text: CHUNKS[3]! },
        // The server's MAX_SECTION_TEXT_BYTES is 1024 here.
        { op: 'append', chapter: 1, section: 1, offset: lengths[3], text: 'x'.repeat(1024 - lengths[3]! + 1) },
        { op: 'append', chapter: 1, section: 2, text: 'Two.', fence: 5 },
        { op: 'append', chapter: 1, section: 2, offset: bytes('Two.'), text: ' Stale.', fence: 3 },
      ]);
      expect(out.text).toEqual([
        ...lengths.map((length) => ({ length })),
        { refused: 'offset_mismatch', type: 'OffsetMismatch', length: lengths[3] },
        { refused: 'text_too_large', type: 'TextTooLarge', length: lengths[3] },
        { length: bytes('Two.') },
        { refused: 'fenced', type: 'Fenced', length: null },
      ]);
      const reset = await texts(setup.spec, book, [{ op: 'append', chapter: 1, section: 1, offset: 0, text: 'Anew.', reset: true }]);
      expect(reset.text).toEqual([{ length: bytes('Anew.') }]);
      await received(watch, () => watch.copy.sections.get(`${book}/1:1`)?.attempt === 2 && watch.copy.bytes(book, 1, 1) === bytes('Anew.') && watch.copy.bytes(book, 1, 2) > 0);
      expect(watch.copy.text(book, 1, 1)).toBe('Anew.');
      expect(watch.copy.text(book, 1, 2)).toBe('Two.');
      expect(watch.copy.faults).toEqual([]);
    } finally {
      watch.close();
    }
    const more: TextOp = { op: 'append', chapter: 1, section: 1, offset: bytes('Anew.'), text: ' More.' };
    expect((await texts({ ...setup.spec, secret: 'another-secret-of-32-bytes-long!' }, book, [more])).text).toEqual([{ http: 401, code: 'invalid_token' }]);
    const other = await mintToken({ sub: 'worker', tenant: 'other', scope: 'progress:write' });
    expect((await texts({ ...setup.spec, token: other }, book, [more])).text).toEqual([{ http: 404, code: 'not_found' }]);
    const expired = await mintToken({ sub: 'worker', tenant: 'acme', scope: 'progress:write' }, { ttlSeconds: -60 });
    expect((await texts({ ...setup.spec, token: expired }, book, [more])).text).toEqual([{ http: 401, code: 'invalid_token' }]);
    expect((await texts({ ...setup.spec, anonymous: true }, book, [more])).text).toMatchObject([{ http: 401 }]);
    expect((await texts(setup.spec, book, [more])).text).toEqual([{ length: bytes('Anew. More.') }]);
  }, 60_000);
});
