import { describe, expect, it } from 'vitest';
import { MemoryBroker } from '../../src/broker/memory.js';
import type { BookProgress } from '../../src/progress/schema.js';
import { ProgressTracker } from '../../src/progress/tracker.js';
import { UrgentStates } from '../../src/store/urgent-states.js';
import { silentLog } from '../support/service.js';
import { until } from '../support/wait.js';

function state(version: number, status: BookProgress['status'], bookId = 'b'): BookProgress {
  return { bookId, status, generationStep: 'PLANNING', currentChapter: 0, totalChapters: 0, currentSection: 0, totalSections: 0, overallProgress: 0, message: '', timestamp: 1, version };
}

describe('UrgentStates', () => {
  it('writes the first and terminal states another publisher commits, and the first of the next run, not the others', async () => {
    const broker = new MemoryBroker({ ttlSeconds: 60 });
    const written: string[] = [];
    const urgent = new UrgentStates({ persist: async (s) => written.push(`${s.bookId}@${s.version}`), log: silentLog });
    await urgent.watch(broker);
    const steps: Array<BookProgress['status']> = ['PLANNING', 'GENERATING', 'GENERATING', 'COMPLETE', 'GENERATING', 'ERROR'];
    for (const [i, status] of steps.entries()) await broker.commit(state(i + 1, status), i === 0 ? null : i);
    await until(() => written.length === 4, 2_000, 'four writes');
    expect(written).toEqual(['b@1', 'b@4', 'b@5', 'b@6']);
    await urgent.close();
    await broker.close();
  });

  it('writes the tracker\'s own states once, though the feed carries them too', async () => {
    const broker = new MemoryBroker({ ttlSeconds: 60 });
    const written: number[] = [];
    const urgent = new UrgentStates({ persist: async (s) => written.push(s.version), log: silentLog });
    await urgent.watch(broker);
    const tracker = new ProgressTracker({ states: broker, persistNow: (s) => urgent.persistNow(s) });
    await tracker.updateProgress('t', { message: 'first' });
    await tracker.updateProgress('t', { message: 'second' });
    await tracker.markComplete('t', 0);
    // A later commit from elsewhere shows the feed was delivered past the tracker's states.
    const other = await broker.commit(state(4, 'ERROR', 't'), 3);
    expect(other).toEqual({ committed: true });
    await until(() => written.includes(4), 2_000, 'the foreign terminal state');
    expect(written).toEqual([1, 3, 4]);
    await urgent.close();
    await broker.close();
  });
});
