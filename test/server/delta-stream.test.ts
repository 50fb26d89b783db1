import fc from 'fast-check';
import type { FetchLike } from 'eventsource';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BookProgress, ProgressUpdate } from '../../src/progress/schema.js';
import type { Service } from '../../src/service.js';
import { DeltaWatch } from '../support/delta-watch.js';
import { startServer } from '../support/service.js';
import { RawStream, bookId, expectError, progressUrl } from './http.js';

let service: Service;
const watches: DeltaWatch[] = [];
const raws: RawStream[] = [];

beforeAll(async () => {
  service = await startServer();
});

afterEach(() => {
  for (const w of watches.splice(0)) w.close();
  for (const raw of raws.splice(0)) raw.close();
});

afterAll(async () => {
  await service?.close();
});

const deltaUrl = (id: string) => `${progressUrl(service.url, id)}/stream?delta=merge-patch`;

function watch(url: string, init?: ConstructorParameters<typeof DeltaWatch>[1]): DeltaWatch {
  const w = new DeltaWatch(url, init);
  watches.push(w);
  return w;
}

/** An EventSource fetch that sends `lastEventId` on the first request; the library's own header wins on reconnects. */
function withLastEventId(lastEventId: string): { fetch: FetchLike } {
  return { fetch: (url, init) => fetch(url, { ...init, headers: { 'Last-Event-ID': lastEventId, ...init.headers } }) };
}

/** The events of raw SSE text: name, id and data. */
function sseEvents(text: string): Array<{ event: string; id: string; data: string }> {
  return text
    .split('\n\n')
    .slice(0, -1)
    .map((block) => block.split('\n'))
    .filter((lines) => lines.some((l) => l.startsWith('event: ')))
    .map((lines) => ({
      event: (lines.find((l) => l.startsWith('event: ')) ?? '').slice(7),
      id: (lines.find((l) => l.startsWith('id: ')) ?? '').slice(4),
      data: lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n'),
    }));
}

/** Every received state is exactly the published state of its version; versions only go up. */
function expectExact(w: DeltaWatch, published: ReadonlyMap<string, BookProgress>) {
  expect(w.unpatchable).toEqual([]);
  const last = new Map<string, number>();
  for (const state of w.states) {
    expect(state).toStrictEqual(published.get(`${state.bookId}@${state.version}`));
    expect(state.version).toBeGreaterThan(last.get(state.bookId) ?? 0);
    last.set(state.bookId, state.version);
  }
}

describe('GET /api/ai/progress/:bookId/stream?delta=merge-patch', () => {
  it('sends the whole state first, then patch events with id = version carrying only what changed', async () => {
    const id = bookId('delta-raw');
    const first = await service.tracker.updateProgress(id, { status: 'GENERATING', generationStep: 'RESEARCH', message: 'first', totalChapters: 4 });
    const stream = await RawStream.open(deltaUrl(id));
    raws.push(stream);
    await stream.until((t) => sseEvents(t).length === 1, 5_000, 'the first event');
    const second = await service.tracker.updateProgress(id, { message: 'second', currentChapter: 1 });
    await stream.until((t) => sseEvents(t).length === 2, 5_000, 'the patch');
    const [whole, patch] = sseEvents(stream.text);
    expect(whole).toEqual({ event: 'progress', id: '1', data: JSON.stringify(first) });
    expect(patch?.event).toBe('patch');
    expect(patch?.id).toBe('2');
    const data = JSON.parse(patch?.data ?? '') as Record<string, unknown>;
    expect(data).toMatchObject({ version: 2, message: 'second', currentChapter: 1 });
    // A one-book stream's patches leave out what never changes, the book's id too.
    for (const unchanged of ['bookId', 'status', 'generationStep', 'totalChapters', 'startTime']) expect(data).not.toHaveProperty(unchanged);
    expect(Buffer.byteLength(patch?.data ?? '')).toBeLessThan(Buffer.byteLength(JSON.stringify(second)) / 2);
  });

  it('sends a terminal state whole', async () => {
    const id = bookId('delta-terminal');
    const first = await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'a', totalChapters: 2 });
    const w = watch(deltaUrl(id));
    await w.version(1);
    const published = new Map<string, BookProgress>();
    const states = [first, await service.tracker.updateProgress(id, { message: 'b', currentChapter: 1 }), await service.tracker.markComplete(id, 2)];
    for (const s of states) published.set(`${s.bookId}@${s.version}`, s);
    await w.version(states.at(-1)!.version);
    expect(w.events.map((e) => e.kind)).toEqual(['progress', 'patch', 'progress']);
    expectExact(w, published);
  });

  it('answers an unknown delta format with 400', async () => {
    const res = await fetch(`${progressUrl(service.url, bookId('delta-bad'))}/stream?delta=fossil`);
    await expectError(res, 400, 'invalid_delta');
  });

  it('resumes with Last-Event-ID with the whole state, then patches', async () => {
    const id = bookId('delta-resume');
    const published = new Map<string, BookProgress>();
    const record = (s: BookProgress) => (published.set(`${s.bookId}@${s.version}`, s), s);
    for (let i = 0; i < 3; i++) record(await service.tracker.updateProgress(id, { status: 'GENERATING', message: `m${i}` }));
    const w = watch(deltaUrl(id), withLastEventId('2'));
    await w.version(3);
    record(await service.tracker.updateProgress(id, { message: 'm4' }));
    await w.version(4);
    expect(w.events.map((e) => [e.kind, e.id])).toEqual([['progress', '3'], ['patch', '4']]);
    expectExact(w, published);
  });

  const field = fc.oneof(
    fc.record({ message: fc.string({ unit: 'grapheme', maxLength: 40 }) }),
    fc.record({ currentChapter: fc.integer({ min: 0, max: 10 }), currentSection: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ generationStep: fc.constantFrom('RESEARCH', 'OUTLINE', 'STRUCTURE', 'CHAPTERS', 'PROOFREADING') as fc.Arbitrary<ProgressUpdate['generationStep']> }),
    fc.record({ overallProgress: fc.double({ min: 1, max: 100, noNaN: true }) }),
    fc.record({ estimatedEndTime: fc.integer({ min: 0, max: 2 ** 42 }) }),
  );
  const update: fc.Arbitrary<ProgressUpdate> = fc.array(field, { minLength: 1, maxLength: 3 }).map((parts) => Object.assign({}, ...parts) as ProgressUpdate);
  const step = fc.oneof(
    { weight: 4, arbitrary: update.map((u) => ({ kind: 'update' as const, update: u })) },
    // Published together: versions of one book in one batch of Redis messages are coalesced.
    { weight: 2, arbitrary: fc.array(update, { minLength: 2, maxLength: 6 }).map((us) => ({ kind: 'burst' as const, updates: us })) },
    { weight: 1, arbitrary: fc.constantFrom({ kind: 'reconnect' as const }, { kind: 'fresh' as const }) },
  );

  /**
   * Commits the states of `updates` after `from` without waiting in between: Redis runs them in
   * one go, so their messages reach the server in one batch, which coalesces them per stream.
   */
  async function burst(from: BookProgress, updates: readonly ProgressUpdate[]): Promise<BookProgress[]> {
    const states: BookProgress[] = [];
    let previous = from;
    for (const update of updates) {
      const { version, ...rest } = previous;
      previous = { ...rest, ...update, timestamp: Date.now(), version: version + 1 }; // version last, as committed states end
      states.push(previous);
    }
    const results = await Promise.all(states.map((state) => service.broker.commit(state, state.version - 1)));
    expect(results.every((r) => r.committed)).toBe(true);
    return states;
  }

  it('applied by a real EventSource, patches reproduce every state exactly (random updates, bursts, reconnects)', async () => {
    let skipped = 0;
    let patches = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 10 }), fc.boolean(), async (steps, finish) => {
        const id = bookId('delta-prop');
        const published = new Map<string, BookProgress>();
        let newest = 0;
        const record = (s: BookProgress) => {
          published.set(`${s.bookId}@${s.version}`, s);
          newest = Math.max(newest, s.version);
        };
        record(await service.tracker.updateProgress(id, { status: 'GENERATING', totalChapters: 10, totalSections: 5, message: 'start' }));
        const seen: DeltaWatch[] = [watch(deltaUrl(id))];
        /** The version the current watch resumed from: it sends nothing until a newer one. */
        let resumedAt = 0;
        for (const s of steps) {
          const w = seen.at(-1)!;
          if (s.kind === 'update') record(await service.tracker.updateProgress(id, s.update));
          else if (s.kind === 'burst') (await burst(published.get(`${id}@${newest}`)!, s.updates)).forEach(record);
          else {
            // What the client has when it leaves: the next stream starts there (reconnect) or from nothing (fresh).
            if (newest > resumedAt) await w.version(newest);
            w.close();
            resumedAt = s.kind === 'reconnect' ? newest : 0;
            seen.push(watch(deltaUrl(id), s.kind === 'reconnect' ? withLastEventId(String(newest)) : undefined));
          }
        }
        if (finish) record(await service.tracker.markComplete(id, 10));
        const w = seen.at(-1)!;
        if (newest > resumedAt) await w.version(newest);
        for (const each of seen) {
          expectExact(each, published);
          const events = each.events.filter((e) => e.kind === 'patch');
          patches += events.length;
          skipped += events.filter((e) => e.version > (e.baseVersion ?? 0) + 1).length;
        }
        // What the client shows in the end: the newest state.
        expect(seen.flatMap((each) => each.states).at(-1)).toStrictEqual(published.get(`${id}@${newest}`));
        for (const each of seen) each.close();
      }),
      { numRuns: 30 },
    );
    // The property covered patches over skipped versions, not only consecutive ones.
    expect(patches).toBeGreaterThan(30);
    expect(skipped).toBeGreaterThan(0);
  }, 120_000);
});

describe('delta=merge-patch on the multiplexed and every-book streams', () => {
  it('patches each book of ?books= against its own previous state; ids stay the versions joined', async () => {
    const [a, b] = [bookId('delta-mux'), bookId('delta-mux')];
    const published = new Map<string, BookProgress>();
    const record = (s: BookProgress) => (published.set(`${s.bookId}@${s.version}`, s), s);
    record(await service.tracker.updateProgress(a, { status: 'GENERATING', message: 'a1' }));
    record(await service.tracker.updateProgress(b, { status: 'GENERATING', message: 'b1' }));
    const w = watch(`${service.url}/api/ai/stream?books=${a},${b}&delta=merge-patch`);
    await w.version(1, a);
    await w.version(1, b);
    record(await service.tracker.updateProgress(a, { message: 'a2' }));
    record(await service.tracker.updateProgress(b, { message: 'b2' }));
    record(await service.tracker.updateProgress(a, { message: 'a3' }));
    await w.version(3, a);
    await w.version(2, b);
    expectExact(w, published);
    expect(w.events.map((e) => e.kind)).toEqual(['progress', 'progress', 'patch', 'patch', 'patch']);
    expect(w.events.at(-1)?.id).toBe('3.2');
  });

  it('patches on the every-book stream, each book whole first', async () => {
    const id = bookId('delta-all');
    const w = watch(`${service.url}/api/ai/stream?delta=merge-patch`);
    await w.opened();
    const published = new Map<string, BookProgress>();
    const record = (s: BookProgress) => (published.set(`${s.bookId}@${s.version}`, s), s);
    record(await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'one' }));
    await w.version(1, id);
    record(await service.tracker.updateProgress(id, { message: 'two' }));
    record(await service.tracker.markComplete(id, 0));
    await w.version(3, id);
    const mine = w.events.filter((_, i) => w.states[i]?.bookId === id);
    expect(mine.map((e) => [e.kind, e.id])).toEqual([['progress', ''], ['patch', ''], ['progress', '']]);
    expectExact({ ...w, states: w.states.filter((s) => s.bookId === id), unpatchable: w.unpatchable } as DeltaWatch, published);
  });

  it('works with live text (?text=1): progress patches and text frames on one stream', async () => {
    const id = bookId('delta-text');
    const published = new Map<string, BookProgress>();
    const record = (s: BookProgress) => (published.set(`${s.bookId}@${s.version}`, s), s);
    record(await service.tracker.updateProgress(id, { status: 'GENERATING', message: 'one' }));
    const stream = await RawStream.open(`${progressUrl(service.url, id)}/stream?delta=merge-patch&text=1`);
    raws.push(stream);
    await stream.until((t) => sseEvents(t).length === 1, 5_000, 'the first event');
    record(await service.tracker.updateProgress(id, { message: 'two' }));
    await stream.until((t) => sseEvents(t).some((e) => e.event === 'patch'), 5_000, 'the patch');
    const [whole, patch] = sseEvents(stream.text);
    expect(whole?.event).toBe('progress');
    expect(patch?.event).toBe('patch');
    // With text the id also carries the text position, as for progress events.
    expect(patch?.id).toMatch(/^2;/);
  });
});
