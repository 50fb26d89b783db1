import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { generateTypes } from 'booksai-openapi-codegen';
import { describe, expect, it } from 'vitest';
import { poll, progressClient, publish, startAndList } from '../../examples/openapi-client/client.js';
import { openApiDocument } from '../../src/server/http/openapi.js';
import { serverForFile } from '../support/service.js';
import { TEST_SECRET, mintToken } from '../support/tokens.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const server = serverForFile({ AUTH_JWT_SECRET: TEST_SECRET, DEMO_STEP_MS: '5' });

describe('a client generated from the document (openapi-typescript + openapi-fetch)', () => {
  it('is generated from the served document: docs/openapi.json and schema.d.ts are what `npm run docs:openapi` writes', async () => {
    const served = await (await fetch(`${server.url}/api/openapi.json`)).json();
    expect(served).toEqual(openApiDocument());
    expect(JSON.parse(readFileSync(`${root}docs/openapi.json`, 'utf8'))).toEqual(served);
    expect(readFileSync(`${root}examples/openapi-client/schema.d.ts`, 'utf8')).toBe(await generateTypes(served));
  });

  it('type-checks with tsc, which also refuses the calls the document does not allow', async () => {
    const tsc = `${root}node_modules/.bin/tsc`;
    const run = await promisify(execFile)(tsc, ['--noEmit', '-p', 'examples/openapi-client/tsconfig.json'], { cwd: root }).then(
      () => ({ code: 0, out: '' }),
      (error: { code: number; stdout: string }) => ({ code: error.code, out: error.stdout }),
    );
    expect(run.out).toBe('');
    expect(run.code).toBe(0);
  }, 60_000);

  it('calls the server: publish, poll with If-None-Match, a refusal, start a book and list it', async () => {
    const token = await mintToken({ sub: 'gen', tenant: 'acme', scope: 'progress:read progress:write books:write' });
    const client = progressClient(server.url, token);
    const state = await publish(client, 'generated-client', { status: 'GENERATING', generationStep: 'OUTLINE', message: 'typed' });
    expect(state).toMatchObject({ bookId: 'generated-client', version: 1, message: 'typed', tenant: 'acme' });
    const first = await poll(client, 'generated-client');
    expect(first).toMatchObject({ state: { version: 1 }, etag: '"1"' });
    expect(await poll(client, 'generated-client', '"1"')).toBe('unchanged');
    expect(await poll(progressClient(server.url), 'generated-client')).toMatchObject({ success: false, error: { code: 'unauthorized' } });
    expect(await publish(client, 'generated-client', { currentChapter: 1, totalChapters: 0 })).toMatchObject({ success: false, error: { code: 'invalid_progress' } });
    const { started, listed } = await startAndList(client, 'Generated');
    expect(listed).toContain(started);
  });
});
