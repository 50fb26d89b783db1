import { describe, expect, it } from 'vitest';
import type { BookProgress } from '../../src/progress/schema.js';
import { bookId, progressUrl, published } from '../server/http.js';
import { serverForFile } from '../support/service.js';

// Found by the chaos campaign: after a SIGSTOP and a Redis blackhole, a poller holding v17 was
// answered 200 with an older version (the process's fallback, Postgres, lagging Redis), so its
// version went backwards. A poll never answers older than the client's If-None-Match.
const server = serverForFile();

/** A book Redis does not hold, at `version` in the database (what a lagging snapshot leaves). */
async function lagging(label: string, version: number): Promise<string> {
  const template = await published(server.url, bookId(`${label}-template`), { status: 'GENERATING', message: 'template' });
  const id = bookId(label);
  const persisted: BookProgress = { ...template, bookId: id, version };
  await server.service.store.saveProgress([persisted]);
  return id;
}

describe('a poll whose If-None-Match is newer than what the process knows', () => {
  it('is 304 keeping the client\'s version, not 200 with an older state, on the first poll and on the fast path', async () => {
    const id = await lagging('older-than-client', 41);
    for (let i = 0; i < 3; i++) {
      const res = await fetch(progressUrl(server.url, id), { headers: { 'If-None-Match': '"45"' } });
      expect(res.status).toBe(304);
      expect(res.headers.get('etag')).toBe('"45"');
      expect(await res.text()).toBe('');
    }
    const head = await fetch(progressUrl(server.url, id), { method: 'HEAD', headers: { 'If-None-Match': '"45"' } });
    expect(head.status).toBe(304);
    expect(head.headers.get('etag')).toBe('"45"');
  });

  it('is still 200 with the state for an older or foreign ETag', async () => {
    const id = await lagging('newer-than-client', 41);
    for (const etag of ['"40"', 'W/"99"', '"abc"', '*']) {
      const res = await fetch(progressUrl(server.url, id), { headers: { 'If-None-Match': etag } });
      expect(res.status, etag).toBe(200);
      expect(res.headers.get('etag')).toBe('"41"');
      expect(((await res.json()) as { data: BookProgress }).data.version).toBe(41);
    }
  });
});
