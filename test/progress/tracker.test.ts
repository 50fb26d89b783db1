import { describe, expect, it } from 'vitest';
import { MemoryBroker } from '../../src/broker/memory.js';
import { Refusal } from '../../src/refusal.js';
import type { BookProgress } from '../../src/progress/schema.js';
import { ProgressTracker } from '../../src/progress/tracker.js';

describe('ProgressTracker', () => {
  it('offers the API a worker publishes with: updateProgress, markComplete, markError', async () => {
    const tracker = new ProgressTracker({ states: new MemoryBroker({ ttlSeconds: 60 }) });
    await tracker.updateProgress('seed-book', {
      status: 'GENERATING',
      generationStep: 'CHAPTERS',
      currentChapter: 2,
      totalChapters: 10,
      overallProgress: 45,
      message: 'Writing Chapter 2 of 10...',
    });
    const done = await tracker.markComplete('seed-book', 10);
    expect(done).toMatchObject({ status: 'COMPLETE', overallProgress: 100, currentChapter: 10, version: 2 });
    const failed = await tracker.markError('other-book', 'the model timed out');
    expect(failed).toMatchObject({ status: 'ERROR', error: 'the model timed out', version: 1 });
  });

  it('marks a book failed even when the error is long or holds text Postgres refuses', async () => {
    const tracker = new ProgressTracker({ states: new MemoryBroker({ ttlSeconds: 60 }) });
    const huge = `upstream said: ${'x'.repeat(9_000)}`;
    const failed = await tracker.markError('long-error', huge);
    expect(failed.status).toBe('ERROR');
    expect(failed.error).toBe(huge.slice(0, 8_000));
    const odd = await tracker.markError('odd-error', `nul\u0000 and ${'🙂'.repeat(1_100)}`);
    expect(odd.status).toBe('ERROR');
    expect(odd.message.isWellFormed() && !odd.message.includes('\u0000')).toBe(true);
  });

  it('assignTenant gives a book without a tenant to one, in a new version only, once', async () => {
    const persisted: BookProgress[] = [];
    const recovered: BookProgress = { bookId: 'expired', status: 'COMPLETE', generationStep: 'COMPLETE', currentChapter: 1, totalChapters: 1, currentSection: 0, totalSections: 0, overallProgress: 100, message: 'done', version: 7, timestamp: 1 };
    const tracker = new ProgressTracker({
      states: new MemoryBroker({ ttlSeconds: 60 }),
      persistNow: async (state) => void persisted.push(state),
      recover: async (bookId) => (bookId === 'expired' ? recovered : null),
    });
    expect(await tracker.assignTenant('missing', 'acme')).toEqual({ outcome: 'none', state: null });
    const open = await tracker.updateProgress('open-book', { status: 'GENERATING', totalChapters: 3, currentChapter: 1, message: 'open mode' });
    expect(open.tenant).toBeUndefined();

    const { outcome, state } = await tracker.assignTenant('open-book', 'acme');
    expect(outcome).toBe('assigned');
    expect(state).toEqual({ ...open, tenant: 'acme', version: open.version + 1, timestamp: state!.timestamp });
    // Where the schema puts it, as in every state with a tenant.
    expect(Object.keys(state!).indexOf('tenant')).toBe(Object.keys(state!).indexOf('version') - 1);
    expect(persisted.at(-1)).toEqual(state);

    expect((await tracker.assignTenant('open-book', 'acme')).outcome).toBe('unchanged');
    expect(await tracker.assignTenant('open-book', 'globex')).toEqual({ outcome: 'taken', state: null });
    // Later writes, by anyone allowed, keep it; a writer of another tenant is refused as before.
    expect((await tracker.updateProgress('open-book', { currentChapter: 2 })).tenant).toBe('acme');
    await expect(tracker.updateProgress('open-book', { currentChapter: 3 }, { writer: { tenant: 'globex', anyTenant: false } })).rejects.toThrow(Refusal);

    // A book whose broker state expired: from the database's, with the next version.
    const fromStore = await tracker.assignTenant('expired', 'acme');
    expect(fromStore).toMatchObject({ outcome: 'assigned', state: { tenant: 'acme', version: 8, status: 'COMPLETE' } });
  });

  it('refuses invalid ids and updates with an invalid_progress Refusal', async () => {
    const tracker = new ProgressTracker({ states: new MemoryBroker({ ttlSeconds: 60 }) });
    await expect(tracker.updateProgress('a/b', {})).rejects.toThrow(Refusal);
    await expect(tracker.updateProgress('ok', { overallProgress: 150 })).rejects.toThrow(/overallProgress/);
    await expect(tracker.updateProgress('ok', { status: 'DONE' } as never)).rejects.toThrow(/status/);
    await expect(tracker.updateProgress('ok', { overalProgress: 5 } as never)).rejects.toThrow(Refusal);
  });

  it('continues from the recovered state when the broker lost the book', async () => {
    const persisted: BookProgress = {
      bookId: 'lost',
      status: 'GENERATING',
      generationStep: 'CHAPTERS',
      currentChapter: 4,
      totalChapters: 10,
      currentSection: 0,
      totalSections: 0,
      overallProgress: 50,
      message: 'Writing Chapter 4 of 10...',
      timestamp: 1,
      startTime: 1,
      version: 35,
    };
    const tracker = new ProgressTracker({ states: new MemoryBroker({ ttlSeconds: 60 }), recover: async () => persisted });
    const next = await tracker.updateProgress('lost', { currentChapter: 5 });
    expect(next).toMatchObject({ version: 36, totalChapters: 10, startTime: 1, currentChapter: 5 });
  });

  it('never restarts a version it has published itself, even when the broker comes back empty', async () => {
    let backing = new MemoryBroker({ ttlSeconds: 60 });
    const tracker = new ProgressTracker({
      states: { get: (id) => backing.get(id), commit: (state, expected) => backing.commit(state, expected) },
    });
    for (let i = 0; i < 40; i++) await tracker.updateProgress('restarted', { message: `m${i}` });
    backing = new MemoryBroker({ ttlSeconds: 60 }); // Redis restarted without persistence
    expect(await backing.get('restarted')).toBeNull();
    expect((await tracker.updateProgress('restarted', {})).version).toBe(41);
  });

  it('persists the first state of a run and terminal states at once, resolving after', async () => {
    const durable: number[] = [];
    const tracker = new ProgressTracker({
      states: new MemoryBroker({ ttlSeconds: 60 }),
      persistNow: async (state) => {
        await new Promise((resolve) => setImmediate(resolve));
        durable.push(state.version);
      },
    });
    await tracker.updateProgress('t', {});
    await tracker.updateProgress('t', { message: 'in between: left to the snapshot' });
    const done = await tracker.markComplete('t', 0);
    expect(durable).toEqual([1, done.version]);
    await tracker.updateProgress('t', { status: 'PLANNING' }); // a new run
    expect(durable).toEqual([1, done.version, done.version + 1]);
  });
});
