import { EventSource } from 'eventsource';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { watch } from '../../web/client.js';
import type { ConnectionState, Watching } from '../../web/client.js';
import { bookId } from '../server/http.js';
import { NginxProcess } from '../support/nginx-process.js';
import { startServer } from '../support/service.js';
import { until, watchForAbsence } from '../support/wait.js';

const HEARTBEAT_MS = 400;

let service: Service;
let watching: Watching | null = null;
const proxies: NginxProcess[] = [];

/**
 * nginx as a misconfigured proxy: proxy_buffering on, ignoring the server's X-Accel-Buffering: no,
 * and gzip on the stream. (nginx 1.22 with proxy_buffering on alone still passes each read on at
 * once; gzip holds the events until its buffer fills, which heartbeats take minutes to do.)
 * `headersFirst` (postpone_output 0): the headers go out, so the stream opens and then brings
 * nothing; without it nginx holds the headers too.
 */
async function bufferingNginx(headersFirst: boolean): Promise<string> {
  const nginx = await NginxProcess.start(new URL(service.url).host, '127.0.0.1', (conf) => {
    const edited = conf
      .replace('proxy_buffering off;', 'proxy_buffering on; proxy_ignore_headers X-Accel-Buffering;')
      .replace('gzip off;', `gzip on; gzip_types text/event-stream;${headersFirst ? ' postpone_output 0;' : ''}`);
    if (!edited.includes('proxy_buffering on;') || !edited.includes('gzip on;')) throw new Error('deploy/nginx.conf no longer says proxy_buffering off; gzip off;');
    return edited;
  });
  proxies.push(nginx);
  return `http://127.0.0.1:${nginx.port}`;
}

beforeAll(async () => {
  service = await startServer({ HEARTBEAT_MS: String(HEARTBEAT_MS) });
});
afterAll(async () => {
  for (const nginx of proxies) await nginx.stop();
  await service?.close();
});
afterEach(() => {
  watching?.close();
  watching = null;
});

function observe() {
  const states: Array<{ state: ConnectionState; buffered: boolean; at: number }> = [];
  const versions: number[] = [];
  return { states, versions, onConnection: (state: ConnectionState, { buffered }: { buffered: boolean }) => states.push({ state, buffered, at: Date.now() }) };
}

describe('proxy self-check', () => {
  it('behind a buffering nginx: the stream opens, brings nothing, and the client polls within 2 heartbeat periods, saying why', async () => {
    const id = bookId('buffered');
    await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'v1' });
    const { states, versions, onConnection } = observe();
    const baseUrl = await bufferingNginx(true);
    watching = watch([id], (p) => versions.push(p.version), { EventSource, baseUrl, heartbeatMs: HEARTBEAT_MS, pollIntervalMs: 100, sseRetryMs: 60_000, onConnection });
    await until(() => states.some((s) => s.state === 'polling'), 5_000, 'the fallback to polling');
    const live = states.find((s) => s.state === 'live');
    const polling = states.find((s) => s.state === 'polling');
    expect(live).toBeDefined(); // the stream did open: only its bytes were held
    expect(polling?.buffered).toBe(true);
    expect(watching.buffered).toBe(true);
    expect((polling?.at ?? 0) - (live?.at ?? 0)).toBeLessThanOrEqual(2 * HEARTBEAT_MS + 250);

    for (let i = 2; i <= 4; i++) await service.tracker.updateProgress(id, { message: `v${i}` });
    await service.tracker.markComplete(id, 0);
    await until(() => versions.at(-1) === 5, 5_000, 'polling to bring the final state');
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
  });

  it('behind a buffering nginx that holds even the headers: polls within 2 heartbeat periods too', async () => {
    const id = bookId('buffered-headers');
    await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'v1' });
    const { states, versions, onConnection } = observe();
    const baseUrl = await bufferingNginx(false);
    const started = Date.now();
    watching = watch([id], (p) => versions.push(p.version), { EventSource, baseUrl, heartbeatMs: HEARTBEAT_MS, pollIntervalMs: 100, sseRetryMs: 60_000, onConnection });
    await until(() => states.some((s) => s.state === 'polling'), 5_000, 'the fallback to polling');
    expect(states[0]).toMatchObject({ state: 'polling', buffered: true });
    expect((states[0]?.at ?? 0) - started).toBeLessThanOrEqual(2 * HEARTBEAT_MS + 250);
    await until(() => versions.includes(1), 5_000, 'polling to bring the state');
  });

  it('straight to the server: heartbeats arrive, the stream stays live', async () => {
    const id = bookId('unbuffered');
    await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'v1' });
    const { states, onConnection } = observe();
    watching = watch([id], () => {}, { EventSource, baseUrl: service.url, heartbeatMs: HEARTBEAT_MS, pollIntervalMs: 100, onConnection });
    await until(() => states.some((s) => s.state === 'live'), 5_000, 'the live stream');
    await watchForAbsence(4 * HEARTBEAT_MS);
    expect(states.map((s) => s.state)).toEqual(['live']);
    expect(watching.buffered).toBe(false);
  });
});
