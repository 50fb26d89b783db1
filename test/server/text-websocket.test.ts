import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../src/service.js';
import { serverForFile } from '../support/service.js';
import { TextCopy, textSocket } from '../support/text.js';
import { until } from '../support/wait.js';
import { bookId } from './http.js';

const closers: Array<() => void> = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

let baseUrl = '';
async function socket(copy?: TextCopy) {
  const s = await textSocket(baseUrl, copy);
  closers.push(() => s.ws.terminate());
  return s;
}

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
] as const)('WebSocket live text (%s)', (_, env) => {
  const server = serverForFile(env);
  beforeAll(() => {
    baseUrl = server.url;
  });

  it('{"type":"subscribe","text":true} gets text messages, coalesced; a progress-only subscription gets none', async () => {
    const id = bookId('ws-text');
    await server.service.tracker.updateProgress(id, { status: 'GENERATING', message: 'writing' });
    const reader = await socket();
    const plain = await socket();
    reader.send({ type: 'subscribe', books: [id], text: true });
    plain.send({ type: 'subscribe', books: [id] });
    await until(() => reader.messages.some((m) => m.type === 'progress') && plain.messages.some((m) => m.type === 'progress'), 5_000, 'the first state');
    const words = Array.from({ length: 300 }, (_, i) => `word${i} `);
    await write(server.service, id, 1, 1, words);
    await until(() => reader.copy.text(id, 1, 1) === words.join(''), 5_000, 'the text');
    expect(reader.copy.faults).toEqual([]);
    expect(reader.copy.frames).toBeLessThan(30);
    const first = reader.messages.find((m) => m.type === 'text');
    expect(Object.keys(first ?? {}).sort()).toEqual(['attempt', 'bookId', 'chapter', 'offset', 'section', 'text', 'type']);
    await server.service.tracker.updateProgress(id, { message: 'more' });
    await until(() => plain.messages.filter((m) => m.type === 'progress').length === 2, 5_000, 'the second state');
    expect(plain.messages.filter((m) => m.type === 'text')).toEqual([]);
  });

  it('resumes with textFrom: only what is new, then live; a reset and a saved chapter are said', async () => {
    const id = bookId('ws-resume');
    await write(server.service, id, 1, 1, ['one ', 'two ']);
    const first = await socket();
    first.send({ type: 'subscribe', books: [id], text: true });
    await until(() => first.copy.text(id, 1, 1) === 'one two ', 5_000, 'the first part');
    first.ws.close();
    await write(server.service, id, 1, 1, ['three'], false);
    const second = await socket(first.copy);
    second.send({ type: 'subscribe', books: [id], text: true, textFrom: { [id]: '1:1:8' } });
    await until(() => second.copy.text(id, 1, 1) === 'one two three', 5_000, 'the rest');
    expect(second.messages.filter((m) => m.type === 'text').map((m) => m.text)).toEqual(['three']);
    await write(server.service, id, 1, 1, ['over']);
    await until(() => second.copy.text(id, 1, 1) === 'over', 5_000, 'the reset');
    expect(second.messages.some((m) => m.type === 'text' && m.reset === true)).toBe(true);
    second.ws.close();
    await write(server.service, id, 2, 1, ['chapter two']);
    const third = await socket(second.copy);
    third.send({ type: 'subscribe', books: [id], text: true, textFrom: { [id]: '1:1:2:4' } });
    await until(() => third.copy.text(id, 2, 1) === 'chapter two', 5_000, 'chapter two');
    expect(third.messages.find((m) => m.type === 'chapter')).toEqual({ type: 'chapter', bookId: id, chapter: 1, saved: true });
    expect(third.copy.faults).toEqual([]);
  });

  it('refuses a malformed textFrom', async () => {
    const s = await socket();
    s.send({ type: 'subscribe', books: ['x'], text: true, textFrom: { x: 'nope' } });
    await until(() => s.messages.some((m) => m.type === 'error'), 5_000, 'the error');
    expect(s.messages[0]).toMatchObject({ type: 'error', bookId: 'x', error: { code: 'invalid_text_from' } });
  });
});
