import { describe, expect, it } from 'vitest';
import { foldBatch, observe } from '../../src/analytics/timeline.js';
import type { RunRecord, Span } from '../../src/analytics/timeline.js';
import type { BookProgress } from '../../src/progress/schema.js';
import { simulateRun } from './runs.js';

const SHAPE = { chapters: 3, sections: 2, stepMs: 1_000, sectionMs: 500, start: 1_700_000_000_000 };

function fold(states: readonly BookProgress[], batches = 1): { runs: Map<string, RunRecord>; spans: Span[] } {
  let last = new Map<string, RunRecord>();
  const spans: Span[] = [];
  const size = Math.ceil(states.length / batches);
  for (let i = 0; i < states.length; i += size) {
    const folded = foldBatch(last, states.slice(i, i + size));
    spans.push(...folded.spans);
    last = new Map(last);
    for (const run of folded.runs) last.set(run.bookId, run);
  }
  return { runs: last, spans };
}

const durations = (spans: Span[], kind: Span['kind']) => spans.filter((s) => s.kind === kind).map((s) => [s.step, s.chapter, s.section, s.endedAt - s.startedAt, s.exact]);

describe('timeline fold', () => {
  it('derives every step, chapter and section of a run with their real durations, and its end', () => {
    const states = simulateRun('b1', SHAPE);
    const { runs, spans } = fold(states);
    expect(durations(spans, 'step')).toEqual([
      ['PLANNING', 0, 0, 1_000, true],
      ['RESEARCH', 0, 0, 1_000, true],
      ['OUTLINE', 0, 0, 1_000, true],
      ['STRUCTURE', 0, 0, 1_000, true],
      ['CHAPTERS', 0, 0, 3_000, true],
      ['PROOFREADING', 0, 0, 1_000, true],
    ]);
    expect(durations(spans, 'chapter')).toEqual([1, 2, 3].map((c) => ['CHAPTERS', c, 0, 1_000, true]));
    expect(durations(spans, 'section')).toEqual([1, 2, 3].flatMap((c) => [1, 2].map((s) => ['CHAPTERS', c, s, 500, true])));
    const run = runs.get('b1')!;
    expect(run).toMatchObject({ status: 'COMPLETE', startedAt: SHAPE.start, endedAt: SHAPE.start + 8_000, error: null, version: states.length });
  });

  it('gives the same rows whether the states come in one batch or several, shuffled, with duplicates', () => {
    const states = simulateRun('b1', SHAPE);
    const once = fold(states);
    const split = fold(states, 4);
    expect(split.spans).toEqual(once.spans);
    expect(split.runs).toEqual(once.runs);
    const shuffled = [...states, ...states.slice(3, 8)].reverse();
    expect(foldBatch(new Map(), shuffled).spans).toEqual(once.spans);
  });

  it('ignores states not newer than the run', () => {
    const states = simulateRun('b1', SHAPE);
    const { runs } = fold(states);
    const run = runs.get('b1')!;
    expect(observe(run, states[4]!)).toEqual({ run, spans: [] });
  });

  it('keeps what a feed with skipped versions shows: transitions across a gap are inexact, the end is never lost', () => {
    const states = simulateRun('b1', SHAPE);
    const seen = states.filter((s, i) => i % 3 === 0 || i === states.length - 1);
    const { runs, spans } = fold(seen);
    expect(runs.get('b1')).toMatchObject({ status: 'COMPLETE', endedAt: SHAPE.start + 8_000 });
    expect(spans.length).toBeGreaterThan(0);
    // Every span seen across a gap says so; none is exact.
    expect(spans.every((s) => !s.exact)).toBe(true);
    // Nothing ends before it starts, and each end lies at a commit the feed showed.
    const commits = new Set(seen.map((s) => s.timestamp));
    for (const span of spans) {
      expect(span.endedAt).toBeGreaterThanOrEqual(span.startedAt);
      expect(commits.has(span.endedAt)).toBe(true);
    }
  });

  it('records an ERROR with its message, leaves what was running unfinished, and starts a new run on retry', () => {
    const failed = simulateRun('b2', { ...SHAPE, failAtChapter: 2, tenant: 'acme' });
    const retry = simulateRun('b2', { ...SHAPE, start: SHAPE.start + 60_000, tenant: 'acme' }, failed.at(-1)!);
    const { runs, spans } = fold(failed);
    const run = runs.get('b2')!;
    expect(run).toMatchObject({ status: 'ERROR', error: 'chapter 2 failed', tenant: 'acme', endedAt: SHAPE.start + 4_000 + 1_000 + 500 });
    expect(spans.filter((s) => s.kind === 'chapter').map((s) => s.chapter)).toEqual([1]);
    expect(spans.some((s) => s.step === 'CHAPTERS' && s.kind === 'step')).toBe(false);
    expect(run.cursor.step).toBe('CHAPTERS');

    const next = foldBatch(runs, retry);
    expect(next.runs).toHaveLength(1);
    expect(next.runs[0]).toMatchObject({ startedAt: SHAPE.start + 60_000, status: 'COMPLETE', tenant: 'acme' });
    expect(next.spans.every((s) => s.runStartedAt === SHAPE.start + 60_000 && s.exact)).toBe(true);
  });

  it('marks the first step inexact when the recording begins mid-run', () => {
    const states = simulateRun('b3', SHAPE);
    const { spans } = fold(states.slice(2));
    expect(spans[0]).toMatchObject({ kind: 'step', step: 'OUTLINE', exact: false });
    expect(spans.slice(1).filter((s) => s.kind === 'step').every((s) => s.exact)).toBe(true);
  });
});
