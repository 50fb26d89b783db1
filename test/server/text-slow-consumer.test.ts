import { get } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { TEXT_BACKLOG_BYTES, TextFeed, frameData } from '../../src/server/delivery/text-feed.js';
import type { TextFrame } from '../../src/server/delivery/text-feed.js';
import { serverForFile } from '../support/service.js';
import { TextCopy, TextWatch } from '../support/text.js';
import type { TextData } from '../support/text.js';
import { until, withTimeout } from '../support/wait.js';
import { bookId } from './http.js';

const server = serverForFile();
const closers: Array<() => void> = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** Applies the text events of an SSE body to `copy`; returns the last id. */
function applyBody(body: string, copy: TextCopy): string {
  let lastId = '';
  for (const block of body.split('\n\n')) {
    const fields = new Map<string, string>();
    for (const line of block.split('\n')) {
      const at = line.indexOf(': ');
      if (at > 0) fields.set(line.slice(0, at), line.slice(at + 2));
    }
    if (fields.has('id')) lastId = fields.get('id') as string;
    if (fields.get('event') === 'text') copy.apply(JSON.parse(fields.get('data') as string) as TextData);
  }
  return lastId;
}

describe('a slow consumer of live text', () => {
  it('is never missing text: past the backlog bound its stream ends with a resume id, and resuming gets the rest, byte for byte', async () => {
    const id = bookId('slow');
    const before = server.service.streams.size;
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = get(`${server.url}/api/ai/progress/${id}/stream?text=1`, resolve);
      req.on('error', reject);
      closers.push(() => req.destroy());
    });
    res.pause(); // reads nothing: the socket's buffers fill, then the server's
    expect(res.statusCode).toBe(200);
    await until(() => server.service.streams.size === before + 1, 5_000, 'the stream to open');
    const sectionBytes = 200 * 1024;
    const sections = Math.ceil((TEXT_BACKLOG_BYTES * 8) / sectionBytes);
    const expected: string[] = [];
    for (let section = 1; section <= sections; section++) {
      await server.service.texts.beginSection(id, 1, section);
      let offset = 0;
      let whole = '';
      while (offset < sectionBytes) {
        const chunk = `s${section} words at ${offset}, `.padEnd(4096, '·');
        const result = await server.service.texts.append(id, { chapter: 1, section, offset }, chunk);
        if (!result.ok) throw new Error(JSON.stringify(result));
        offset = result.length;
        whole += chunk;
      }
      expected.push(whole);
    }
    // The server gave up on it (rather than holding unbounded text, or dropping some).
    await until(() => server.service.streams.size === before, 10_000, 'the slow stream to be ended');
    res.setEncoding('utf8');
    let body = '';
    res.on('data', (data: string) => (body += data));
    res.resume();
    await withTimeout(once(res, 'end'), 10_000, 'the rest of the slow body');
    const copy = new TextCopy();
    const lastId = applyBody(body, copy);
    expect(copy.faults).toEqual([]);
    expect(body).toMatch(/retry: \d+\n\n$/);
    const had = expected.findIndex((text, i) => copy.text(id, 1, i + 1) !== text);
    expect(had).toBeGreaterThanOrEqual(0); // it really fell behind
    const resumed = new TextWatch(`${server.url}/api/ai/progress/${id}/stream?text=1`, copy, lastId);
    closers.push(() => resumed.close());
    await until(() => copy.text(id, 1, sections) === expected[sections - 1], 10_000, 'the resumed reader to catch up');
    expect(copy.faults).toEqual([]);
    for (let section = 1; section <= sections; section++) expect(copy.text(id, 1, section)).toBe(expected[section - 1]);
  });
});

describe('a catch-up read of a long chapter', () => {
  it('holds at most the backlog bound plus a section per connection, reads the rest as the client takes it, and bounds live chunks waiting behind it', async () => {
    const texts = server.service.texts; // the server's text log, on the real Redis
    const id = bookId('longread');
    const sectionBytes = 200 * 1024;
    const expected: string[] = [];
    for (let section = 1; section <= 20; section++) {
      const whole = `s${section} `.padEnd(sectionBytes, 'w');
      const result = await texts.append(id, { chapter: 1, section, offset: 0 }, whole);
      if (!result.ok) throw new Error(JSON.stringify(result));
      expected.push(whole);
    }
    let due = 0;
    let overflowed = 0;
    const feed = new TextFeed(texts, { onDue: () => due++, onOverflow: () => overflowed++ });
    closers.push(() => feed.close());
    // A client that takes nothing: add resolves (so the stream opens), with 4 MB of text unread.
    await withTimeout(feed.add(id, null), 10_000, 'the catch-up to open');
    const held: TextFrame[] = [];
    const heldBytes = () => held.reduce((sum, frame) => sum + (frame.kind === 'text' ? Buffer.byteLength(frame.text) : 0), 0);
    // What is pending is taken only now; before, it had to stay within the bound and one section.
    for (let frame = feed.take(); frame !== null; frame = feed.take()) held.push(frame);
    expect(heldBytes()).toBeLessThanOrEqual(TEXT_BACKLOG_BYTES + sectionBytes);
    expect(heldBytes()).toBeGreaterThan(0);
    // Taking makes room: the reads go on, and the client gets the whole chapter, byte for byte.
    const copy = new TextCopy();
    await until(() => {
      for (let frame = feed.take(); frame !== null; frame = feed.take()) held.push(frame);
      return heldBytes() >= 20 * sectionBytes;
    }, 10_000, 'the rest of the chapter');
    for (const frame of held) if (frame.kind === 'text') copy.apply(frameData(frame) as unknown as TextData);
    expect(copy.faults).toEqual([]);
    for (let section = 1; section <= 20; section++) expect(copy.text(id, 1, section)).toBe(expected[section - 1]);
    expect(overflowed).toBe(0);
    feed.close();

    // Another client that takes nothing, while the writer goes on: live chunks waiting behind its
    // catch-up count too, and past the bound the client is ended (it resumes from what it got).
    let ended = 0;
    const stuck = new TextFeed(texts, { onDue: () => {}, onOverflow: () => ended++ });
    closers.push(() => stuck.close());
    await withTimeout(stuck.add(id, null), 10_000, 'the second catch-up to open');
    let written = 0;
    for (let section = 21; ended === 0 && written < 3 * TEXT_BACKLOG_BYTES; section++) {
      const result = await texts.append(id, { chapter: 1, section, offset: 0 }, `s${section} `.padEnd(sectionBytes, 'y'));
      if (!result.ok) throw new Error(JSON.stringify(result));
      written += result.length;
    }
    await until(() => ended === 1, 5_000, 'the stuck client to be ended');
    expect(written).toBeLessThan(3 * TEXT_BACKLOG_BYTES);
    expect(due).toBeGreaterThan(0);
  });
});
