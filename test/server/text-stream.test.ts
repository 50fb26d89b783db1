import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { serverForFile } from '../support/service.js';
import { TextCopy, TextWatch, chunked } from '../support/text.js';
import { until } from '../support/wait.js';
import { bookId } from './http.js';

const watches: TextWatch[] = [];
afterEach(() => {
  for (const w of watches.splice(0)) w.close();
});

let baseUrl = '';
function open(path: string, copy?: TextCopy, lastEventId?: string): TextWatch {
  const w = new TextWatch(`${baseUrl}${path}`, copy, lastEventId);
  watches.push(w);
  return w;
}

/** Appends `chunks` to a section, at the offsets the log expects. */
async function write(service: Service, id: string, chapter: number, section: number, chunks: string[], begin = true): Promise<void> {
  if (begin) await service.texts.beginSection(id, chapter, section);
  let offset = (await service.texts.read(id, chapter, section))?.length ?? 0;
  for (const text of chunks) {
    const result = await service.texts.append(id, { chapter, section, offset }, text);
    if (!result.ok) throw new Error(`append refused: ${JSON.stringify(result)}`);
    offset = result.length;
  }
}

describe.each([
  ['real Redis', {}],
  ['embedded', { REDIS_URL: undefined }],
] as const)('SSE live text (%s)', (_, env) => {
  const server = serverForFile(env);
  beforeAll(() => {
    baseUrl = server.url;
  });

  it('?text=1 carries event: text, merged and contiguous, with resume ids; a progress-only stream carries none', async () => {
    const id = bookId('text');
    await server.service.tracker.updateProgress(id, { status: 'GENERATING', message: 'writing', totalChapters: 2 });
    const withText = open(`/api/ai/progress/${id}/stream?text=1`);
    const without = open(`/api/ai/progress/${id}/stream`);
    await Promise.all([withText.opened, without.opened]);
    const words = Array.from({ length: 200 }, (_, i) => `wörd${i} `);
    await write(server.service, id, 1, 1, words);
    const expected = words.join('');
    await until(() => withText.copy.text(id, 1, 1) === expected, 5_000, 'the section text');
    expect(withText.copy.faults).toEqual([]);
    // Coalesced: the 200 appends of one tick arrive in far fewer frames, the same bytes.
    expect(withText.copy.frames).toBeLessThan(20);
    expect(withText.lastId).toBe(`1;1:1:1:${Buffer.byteLength(expected)}`);
    await server.service.tracker.updateProgress(id, { message: 'still writing' });
    await until(() => without.progress.length === 2 && withText.progress.length === 2, 5_000, 'the second state on both');
    expect(withText.lastId).toBe(`2;1:1:1:${Buffer.byteLength(expected)}`);
    expect(without.copy.frames).toBe(0);
  });

  it('resumes at any point of any chunking, with no gap and no duplicate, across sections and a reset (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'grapheme', minLength: 2, maxLength: 120 }),
        fc.array(fc.nat(120), { maxLength: 12 }),
        fc.nat(40),
        fc.boolean(),
        fc.boolean(),
        async (text, cuts, reconnectAt, viaTextFrom, reset) => {
          const id = bookId('resume');
          const chunks = chunked(text, cuts);
          const cut = reconnectAt % (chunks.length + 1);
          const first = open(`/api/ai/progress/${id}/stream?text=1`);
          await first.opened;
          await write(server.service, id, 1, 1, chunks.slice(0, cut));
          const had = Buffer.byteLength(chunks.slice(0, cut).join(''));
          await until(() => first.copy.bytes(id, 1, 1) === had, 5_000, 'the first reader to have its part');
          first.close();
          const lastId = first.lastId;
          // Meanwhile: the rest, then (maybe) the section starts over, then the next section.
          await write(server.service, id, 1, 1, chunks.slice(cut), false);
          if (reset) await write(server.service, id, 1, 1, ['again: ', text]);
          await write(server.service, id, 1, 2, ['next ', 'section']);
          const textFrom = lastId === '' ? '' : `&textFrom=${lastId.split(';')[1]?.split(':').filter((_, i) => i !== 2).join(':')}`;
          const second = viaTextFrom || lastId === ''
            ? open(`/api/ai/progress/${id}/stream?text=1${textFrom}`, first.copy)
            : open(`/api/ai/progress/${id}/stream?text=1`, first.copy, lastId);
          // Live chunks race the resume read: those it covers are dropped, none is missed.
          const racing = write(server.service, id, 1, 2, [' li', 've'], false);
          await second.opened;
          await racing;
          await until(() => second.copy.text(id, 1, 2) === 'next section live', 5_000, 'the second section, live');
          second.close();
          expect(second.copy.faults).toEqual([]);
          expect(second.copy.text(id, 1, 1)).toBe(reset ? `again: ${text}` : text);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('a reader that missed a whole chapter is told it is saved (event: chapter), then gets the chapter being written', async () => {
    const id = bookId('chapters');
    await write(server.service, id, 1, 1, ['chapter one ']);
    const first = open(`/api/ai/progress/${id}/stream?text=1`);
    await until(() => first.copy.text(id, 1, 1) === 'chapter one ', 5_000, 'chapter one');
    first.close();
    await write(server.service, id, 1, 1, ['ends here'], false);
    await write(server.service, id, 2, 1, ['chapter two']);
    await write(server.service, id, 3, 1, ['chapter three, ']);
    await write(server.service, id, 3, 2, ['section two']);
    const second = open(`/api/ai/progress/${id}/stream?text=1`, first.copy, first.lastId);
    await until(() => second.copy.text(id, 3, 2) === 'section two', 5_000, 'chapter three');
    expect(second.copy.savedChapters.map((c) => c.chapter)).toEqual([1, 2]);
    expect(second.copy.text(id, 3, 1)).toBe('chapter three, ');
    expect(second.copy.faults).toEqual([]);
  });

  it('the multiplexed and the every-book streams carry text of their books', async () => {
    const [a, b] = [bookId('mux-a'), bookId('mux-b')];
    const mux = open(`/api/ai/stream?books=${a},${b}&text=1`);
    const all = open(`/api/ai/stream?text=1`);
    await Promise.all([mux.opened, all.opened]);
    await write(server.service, a, 1, 1, ['alpha ', 'text']);
    await write(server.service, b, 2, 3, ['beta']);
    for (const w of [mux, all]) {
      await until(() => w.copy.text(a, 1, 1) === 'alpha text' && w.copy.text(b, 2, 3) === 'beta', 5_000, 'both books');
      expect(w.copy.faults).toEqual([]);
    }
    expect(mux.lastId).toBe('0.0;1:1:1:10.2:3:1:4');
    mux.close();
    // Resuming the list stream: only what is new.
    await write(server.service, a, 1, 1, [' more'], false);
    const again = open(`/api/ai/stream?books=${a},${b}&text=1`, mux.copy, mux.lastId);
    await until(() => again.copy.text(a, 1, 1) === 'alpha text more', 5_000, 'the resumed list');
    expect(again.copy.faults).toEqual([]);
  });

  it('gives a resume offset inside a UTF-8 character the section anew (a reset), never text cut mid-character', async () => {
    const id = bookId('midchar');
    await server.service.tracker.updateProgress(id, { status: 'GENERATING', message: 'writing' });
    await write(server.service, id, 1, 1, ['hé', 'llo wörld']); // é is bytes 1-2: offset 2 is inside it
    const byTextFrom = open(`/api/ai/progress/${id}/stream?text=1&textFrom=1:1:1:2`);
    const byLastId = open(`/api/ai/progress/${id}/stream?text=1`, undefined, '1;1:1:1:2');
    for (const w of [byTextFrom, byLastId]) {
      await until(() => w.copy.text(id, 1, 1) === 'héllo wörld', 5_000, 'the section anew');
      expect(w.copy.faults).toEqual([]);
      expect(w.lastId.endsWith(`;1:1:1:${Buffer.byteLength('héllo wörld')}`)).toBe(true);
    }
    // On a character (after é), the rest only.
    const rest = await fetch(`${server.url}/api/ai/progress/${id}/stream?text=1&textFrom=1:1:1:3`);
    const reader = (rest.body as ReadableStream<Uint8Array>).getReader();
    let body = '';
    while (!body.includes('event: text')) body += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    expect(body).toContain('"offset":3,"text":"llo wörld"');
  });

  it('refuses a malformed textFrom and Last-Event-ID', async () => {
    const id = bookId('bad');
    for (const [query, headers] of [
      [`?text=1&textFrom=1:x:3`, {}],
      [`?textFrom=1:1:3`, {}],
      [`?text=1`, { 'Last-Event-ID': '3;1:1' }],
    ] as const) {
      const res = await fetch(`${server.url}/api/ai/progress/${id}/stream${query}`, { headers });
      expect(res.status).toBe(400);
      await res.body?.cancel();
    }
  });
});
