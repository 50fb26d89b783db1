import { describe, expect, it } from 'vitest';
import { MemoryTextLog } from '../../src/broker/memory-text.js';
import type { TextChunk, TextLog } from '../../src/broker/text-log.js';
import { RunText } from '../../src/orchestrator/live-text.js';
import { SectionText } from '../../src/orchestrator/section-text.js';
import { FencedError } from '../../src/progress/tracker.js';
import { silentLog } from '../support/service.js';

/** A run's live text through SectionText and RunText, as the pipeline passes it, into the embedded text log. */
async function setup(options: { maxSectionBytes?: number; failAppends?: number[]; fence?: number } = {}) {
  const fences = new Map<string, number>();
  const memory = new MemoryTextLog({ ttlSeconds: 60, maxSectionBytes: options.maxSectionBytes ?? 1024, fenceOf: (id) => fences.get(id) ?? 0 });
  let appends = 0;
  // The backend failing chosen appends (Redis timing out), written through otherwise.
  const texts: TextLog = {
    beginSection: (...args) => memory.beginSection(...args),
    append: async (...args) => {
      appends++;
      if (options.failAppends?.includes(appends)) throw new Error('redis unavailable: timed out');
      return memory.append(...args);
    },
    read: (...args) => memory.read(...args),
    current: (...args) => memory.current(...args),
    chapterSaved: (...args) => memory.chapterSaved(...args),
    subscribeText: (...args) => memory.subscribeText(...args),
    subscribeAllText: (...args) => memory.subscribeAllText(...args),
  };
  const seen: TextChunk[] = [];
  await memory.subscribeText('book', (chunk) => seen.push(chunk));
  const run = new RunText(texts, 'book', options.fence ?? 1, silentLog);
  const section = (n: number) => new SectionText({ bookId: 'book', chapter: 1, section: n }, (event) => run.write(event), silentLog);
  return { memory, fences, seen, run, section };
}

describe('RunText: a run writing its live text', () => {
  it('begins each section at its first text and appends at contiguous offsets', async () => {
    const { memory, seen, section } = await setup();
    const one = section(1);
    for (const chunk of ['Once ', 'upon ', 'a time.']) await one.append(chunk);
    await section(2).append('Then.');
    expect(await memory.read('book', 1, 1)).toEqual({ attempt: 1, text: 'Once upon a time.', length: 17 });
    expect(seen.map((c) => `${c.section}@${c.offset}:${c.text}`)).toEqual(['1@0:Once ', '1@5:upon ', '1@10:a time.', '2@0:Then.']);
  });

  it('a write that failed sends the section again behind a reset: readers never get a gap', async () => {
    const { memory, seen, section } = await setup({ failAppends: [2] });
    const one = section(1);
    for (const chunk of ['Once ', 'upon ', 'a time.']) await one.append(chunk);
    expect(await memory.read('book', 1, 1)).toEqual({ attempt: 2, text: 'Once upon a time.', length: 17 });
    expect(seen.map((c) => [c.attempt, c.offset, c.text, c.reset ?? false])).toEqual([
      [1, 0, 'Once ', false],
      [2, 0, '', true],
      [2, 0, 'Once upon a time.', false],
    ]);
  });

  it('a section already holding text (another run wrote it) is started over with a reset', async () => {
    const { memory, seen, section } = await setup({ fence: 2 });
    await memory.append('book', { chapter: 1, section: 1, offset: 0 }, 'the dead runner was half');
    seen.length = 0;
    await section(1).append('Fresh.');
    expect(await memory.read('book', 1, 1)).toEqual({ attempt: 2, text: 'Fresh.', length: 6 });
    expect(seen[0]).toMatchObject({ reset: true, attempt: 2, offset: 0 });
  });

  it("a superseded run's write throws FencedError, which stops it", async () => {
    const { fences, section } = await setup({ fence: 1 });
    const one = section(1);
    await one.append('mine ');
    fences.set('book', 2);
    await expect(one.append('stale')).rejects.toBeInstanceOf(FencedError);
  });

  it('past the size limit the live text of the section stops, without resets; the next section goes on', async () => {
    const { memory, seen, section } = await setup({ maxSectionBytes: 10 });
    const one = section(1);
    for (const chunk of ['12345', '67890', 'abc', 'def']) await one.append(chunk);
    await section(2).append('next');
    expect((await memory.read('book', 1, 1))?.text).toBe('1234567890');
    expect((await memory.read('book', 1, 2))?.text).toBe('next');
    expect(seen.some((c) => c.reset)).toBe(false);
    expect(one.text).toBe('1234567890abcdef');
  });
});
