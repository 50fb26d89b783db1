import { describe, expect, it } from 'vitest';
import { estimateEnd, nextState, stepProgress } from '../../src/progress/derive.js';
import { Refusal } from '../../src/refusal.js';
import type { BookProgress } from '../../src/progress/schema.js';

const T0 = 1_700_000_000_000;

describe('stepProgress', () => {
  it('puts each step at its place on the bar, in pipeline order', () => {
    const at = (generationStep: BookProgress['generationStep']) =>
      stepProgress({ generationStep, currentChapter: 0, totalChapters: 0, currentSection: 0, totalSections: 0 });
    const order = (['PLANNING', 'RESEARCH', 'OUTLINE', 'STRUCTURE', 'CHAPTERS', 'PROOFREADING', 'COMPLETE'] as const).map(at);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(at('PLANNING')).toBe(0);
    expect(at('COMPLETE')).toBe(100);
  });

  it('advances through the chapters with chapter and section counters', () => {
    const chapters = (currentChapter: number, currentSection = 0) =>
      stepProgress({ generationStep: 'CHAPTERS', currentChapter, totalChapters: 10, currentSection, totalSections: 4 });
    expect(chapters(1)).toBe(25);
    expect(chapters(1, 2)).toBeCloseTo(28.3, 1);
    expect(chapters(2, 0)).toBe(31.5);
    expect(chapters(10, 4)).toBe(90);
  });
});

describe('estimateEnd', () => {
  it('extrapolates the time spent so far', () => {
    expect(estimateEnd(T0, T0 + 60_000, 25)).toBe(T0 + 240_000);
    expect(estimateEnd(T0, T0 + 60_000, 0)).toBeUndefined();
    expect(estimateEnd(T0, T0 + 60_000, 100)).toBeUndefined();
  });
});

describe('nextState', () => {
  const first = nextState('b1', null, { status: 'GENERATING', generationStep: 'RESEARCH', message: 'Researching...' }, T0);

  it('starts a run: version 1, startTime, defaults for what the update does not say', () => {
    expect(first).toMatchObject({ bookId: 'b1', version: 1, startTime: T0, timestamp: T0, currentChapter: 0, overallProgress: 5 });
  });

  it('merges a partial update into the previous state and bumps the version', () => {
    const next = nextState('b1', first, { generationStep: 'CHAPTERS', totalChapters: 10, currentChapter: 2 }, T0 + 1000);
    expect(next).toMatchObject({ version: 2, message: 'Researching...', status: 'GENERATING', startTime: T0, overallProgress: 31.5 });
    expect(next.estimatedEndTime).toBeGreaterThan(T0 + 1000);
  });

  it('never lets overall progress go down within a run', () => {
    const ahead = nextState('b1', first, { generationStep: 'PROOFREADING' }, T0 + 1000);
    const back = nextState('b1', ahead, { generationStep: 'OUTLINE' }, T0 + 2000);
    expect(back.overallProgress).toBe(ahead.overallProgress);
    const explicitLower = nextState('b1', ahead, { overallProgress: 10 }, T0 + 3000);
    expect(explicitLower.overallProgress).toBe(ahead.overallProgress);
  });

  it('takes an explicit overallProgress as given when it moves forward', () => {
    expect(nextState('b1', first, { overallProgress: 45 }, T0 + 1).overallProgress).toBe(45);
  });

  it('makes COMPLETE mean 100 %, every chapter written, step COMPLETE', () => {
    const chapters = nextState('b1', first, { generationStep: 'CHAPTERS', totalChapters: 3, currentChapter: 1, totalSections: 2 }, T0 + 1);
    const done = nextState('b1', chapters, { status: 'COMPLETE' }, T0 + 2);
    expect(done).toMatchObject({ overallProgress: 100, generationStep: 'COMPLETE', currentChapter: 3, currentSection: 2, estimatedEndTime: T0 + 2 });
  });

  it('keeps counters and progress on ERROR, and clears the error when a new run starts', () => {
    const chapters = nextState('b1', first, { generationStep: 'CHAPTERS', totalChapters: 3, currentChapter: 2 }, T0 + 1);
    const failed = nextState('b1', chapters, { status: 'ERROR', error: 'model refused' }, T0 + 2);
    expect(failed).toMatchObject({ currentChapter: 2, overallProgress: chapters.overallProgress, error: 'model refused' });
    expect(failed.estimatedEndTime).toBeUndefined();
    const rerun = nextState('b1', failed, { status: 'PLANNING' }, T0 + 3);
    expect(rerun).toMatchObject({ version: 4, overallProgress: 0, startTime: T0 + 3, currentChapter: 0 });
    expect(rerun.error).toBeUndefined();
  });

  it('continues above a version floor (a restarted-empty Redis never restarts the count)', () => {
    expect(nextState('b1', null, {}, T0, 40).version).toBe(41);
  });

  it('refuses a merged state that breaks the schema, naming the field', () => {
    expect(() => nextState('b1', first, { totalChapters: 2, currentChapter: 3 }, T0)).toThrow(Refusal);
    expect(() => nextState('b1', first, { totalChapters: 2, currentChapter: 3 }, T0)).toThrow(/currentChapter/);
  });
});
