import { describe, expect, it } from 'vitest';
import { checkHistory, formatReport } from '../../chaos/checker.js';
import type { Invariant } from '../../chaos/checker.js';
import type { HistoryEvent, Seen, Untimed } from '../../chaos/history.js';
import type { KnownViolation } from '../../chaos/known-violations.js';

const state = (version: number, status = 'GENERATING', message = `update ${version}`): Seen => ({ version, status, message });

/** A small history that keeps every promise: one book published, watched, polled, settled. */
function history(...more: Array<Untimed<HistoryEvent>>): HistoryEvent[] {
  const events: Array<Untimed<HistoryEvent>> = [
    { type: 'start', seed: 42, mode: 'single', durationMs: 1_000, boundMs: 3_000, rssLimitMb: 600, servers: 3 },
    { type: 'book', bookId: 'b', source: 'http' },
    { type: 'publish', via: 'http', bookId: 'b', server: 0, status: 200, ms: 12, state: state(1) },
    { type: 'event', watcher: 'sse-b', session: 1, server: 1, bookId: 'b', state: state(1) },
    { type: 'publish', via: 'redis', bookId: 'b', status: 200, ms: 3, state: state(2, 'COMPLETE', 'done') },
    { type: 'event', watcher: 'sse-b', session: 1, server: 1, bookId: 'b', state: state(2, 'COMPLETE', 'done') },
    { type: 'poll', poller: 'poll-b', bookId: 'b', server: 2, status: 200, ms: 5, retryAfter: null, state: state(2, 'COMPLETE', 'done') },
    { type: 'poll', poller: 'poll-b', bookId: 'b', server: 2, status: 304, ms: 4, retryAfter: null },
    { type: 'rss', server: 0, mb: 120 },
    ...more,
  ];
  const finals: Array<Untimed<HistoryEvent>> = more.some((e) => e.type === 'final' && e.bookId === 'b')
    ? []
    : [{ type: 'final', bookId: 'b', redis: state(2, 'COMPLETE', 'done'), postgres: state(2, 'COMPLETE', 'done') }];
  const closing: Array<Untimed<HistoryEvent>> = [{ type: 'final-watcher', watcher: 'sse-b', connected: true, last: { b: state(2, 'COMPLETE', 'done') } }, { type: 'end', settledMs: 10 }];
  // Each event 100 ms after the one before it, unless it names its time.
  return [...events, ...finals, ...closing].map((e, i) => ({ ...e, t: e.t ?? i * 100 }) as HistoryEvent);
}

function verdicts(events: HistoryEvent[], known: KnownViolation[] = []): Record<Invariant, string> {
  return Object.fromEntries(checkHistory(events, known).results.map((r) => [r.invariant, r.verdict])) as Record<Invariant, string>;
}

function violations(events: HistoryEvent[], invariant: Invariant): string[] {
  return checkHistory(events).results.find((r) => r.invariant === invariant)!.violations.map((v) => v.message);
}

describe('the chaos checker', () => {
  it('passes a history that keeps every promise', () => {
    const report = checkHistory(history());
    expect(report.ok).toBe(true);
    expect(report.results.map((r) => `${r.invariant} ${r.verdict}`)).toEqual(['monotonic PASS', 'converged PASS', 'chapters PASS', 'acknowledged PASS', 'bounded PASS', 'rss PASS']);
    expect(report.operations).toBe(6);
  });

  it('reports a watcher seeing a version go back, with both states', () => {
    const events = history({ type: 'event', watcher: 'sse-b', session: 2, server: 1, bookId: 'b', state: state(1) });
    expect(verdicts(events).monotonic).toBe('FAIL');
    expect(violations(events, 'monotonic')).toEqual(['sse-b of b: v1 GENERATING "update 1" after v2 COMPLETE "done" (t=500)']);
  });

  it('reports a terminal state followed by a newer non-terminal one, and two states with one version', () => {
    const events = history(
      { type: 'event', watcher: 'sse-b', session: 1, server: 1, bookId: 'b', state: state(3) },
      { type: 'event', watcher: 'multi-1', session: 1, server: 0, bookId: 'b', state: state(4, 'GENERATING', 'one') },
      { type: 'event', watcher: 'multi-1', session: 1, server: 0, bookId: 'b', state: state(4, 'GENERATING', 'other') },
    );
    expect(violations(events, 'monotonic')).toEqual([
      'sse-b of b: v3 GENERATING "update 3" after the terminal v2 COMPLETE "done"',
      'multi-1 of b: two states with version 4: v4 GENERATING "one", then v4 GENERATING "other"',
    ]);
  });

  it('reports a poller answered an older version than it was shown', () => {
    const events = history({ type: 'poll', poller: 'poll-b', bookId: 'b', server: 0, status: 200, ms: 5, state: state(1) });
    expect(violations(events, 'monotonic')).toHaveLength(1);
  });

  it('reports Redis and Postgres disagreeing, and a connected watcher left behind', () => {
    const events = history(
      { type: 'final', bookId: 'b', redis: state(2, 'COMPLETE', 'done'), postgres: state(1) },
      { type: 'final-watcher', watcher: 'ws-0', connected: true, last: { b: state(1) } },
      { type: 'final-watcher', watcher: 'ws-1', connected: false, last: { b: state(1) } },
    );
    expect(violations(events, 'converged')).toEqual([
      'b: Redis holds v2 COMPLETE "done", Postgres v1 GENERATING "update 1"',
      'ws-0 ends on v1 GENERATING "update 1" of b, the book on v2 COMPLETE "done"',
    ]);
  });

  it('accepts a book missing from Redis only after Redis lost its data', () => {
    const missing = { type: 'final', bookId: 'b', redis: null, postgres: state(2, 'COMPLETE', 'done') } as const;
    expect(verdicts(history(missing)).converged).toBe('FAIL');
    const restart = { type: 'fault', phase: 'start', id: 1, kind: 'redis-restart' } as const;
    expect(verdicts(history(restart, { ...restart, phase: 'end' }, missing)).converged).toBe('PASS');
  });

  it('reports a demo book whose chapters are missing, rewritten or not the generator\'s, or that did not complete', () => {
    const events = history(
      { type: 'book', bookId: 'd', source: 'demo', chapters: 3, sectionsPerChapter: 2, title: 't' },
      {
        type: 'final',
        bookId: 'd',
        redis: state(9),
        postgres: state(9),
        expectedChapters: 3,
        chapters: [
          { number: 1, matches: true, rewritten: true },
          { number: 2, matches: false, rewritten: false },
        ],
      },
    );
    expect(violations(events, 'chapters')).toEqual([
      'd: the demo book ends v9 GENERATING "update 9", not COMPLETE',
      'd: chapter 1 was rewritten (updated_at after created_at)',
      'd: chapter 2 is not the generator\'s text',
      'd: chapter 3 is in Postgres 0 times',
    ]);
  });

  it('reports an acknowledged publish that the final state neither reflects nor supersedes', () => {
    const ack = (v: Seen) => ({ type: 'publish', via: 'http', bookId: 'b', server: 1, status: 200, ms: 9, state: v }) as const;
    expect(verdicts(history(ack(state(2, 'COMPLETE', 'done')), ack(state(1)))).acknowledged).toBe('PASS');
    expect(violations(history(ack(state(3))), 'acknowledged')).toEqual(['b: v3 GENERATING "update 3" was acknowledged (http), the book ends on v2 COMPLETE "done"']);
    expect(violations(history(ack(state(2, 'GENERATING', 'lost'))), 'acknowledged')).toHaveLength(1);
  });

  it('reports a 500, a 503 without Retry-After, a slow answer and an error, unless the server was down', () => {
    const events = history(
      { type: 'poll', poller: 'p', bookId: 'b', server: 0, status: 500, ms: 5 },
      { type: 'publish', via: 'http', bookId: 'b', server: 0, status: 503, ms: 5, retryAfter: null },
      { type: 'publish', via: 'http', bookId: 'b', server: 0, status: 503, ms: 5, retryAfter: '1' },
      { type: 'create', server: 1, status: 201, ms: 3_500, t: 5_000 },
      { type: 'poll', poller: 'p', bookId: 'b', server: 1, status: null, ms: 10, error: 'ECONNREFUSED', t: 5_000 },
    );
    expect(violations(events, 'bounded')).toEqual([
      'poll of b on server 0 at t=895: answered 500',
      'publish of b on server 0 at t=995: answered 503 without Retry-After',
      'create on server 1 at t=1500: answered 201 after 3500 ms (bound 3000 ms)',
      'poll of b on server 1 at t=4990: no answer (ECONNREFUSED) after 10 ms, the server up',
    ]);
    const stopped = history(
      { type: 'fault', phase: 'start', id: 1, kind: 'server-stop', target: 'server-1', t: 2_000 },
      { type: 'create', server: 1, status: 201, ms: 3_500, t: 5_000 },
      { type: 'poll', poller: 'p', bookId: 'b', server: 1, status: null, ms: 10, error: 'ECONNREFUSED', t: 5_000 },
      { type: 'fault', phase: 'end', id: 1, kind: 'server-stop', target: 'server-1', t: 5_100 },
      { type: 'create', server: 1, status: 201, ms: 3_500, t: 9_000 },
      { type: 'create', server: 2, status: 201, ms: 3_500, t: 5_000 },
    );
    expect(violations(stopped, 'bounded').map((m) => m.slice(0, 26))).toEqual(['create on server 1 at t=55', 'create on server 2 at t=15']);
  });

  it("takes the campaign's own stalls off a late answer, and no more than they cover", () => {
    const events = history(
      { type: 'lag', ms: 800, t: 4_500 },
      { type: 'create', server: 1, status: 201, ms: 3_500, t: 5_000 },
      { type: 'create', server: 1, status: 201, ms: 4_500, t: 5_000 },
    );
    expect(violations(events, 'bounded')).toEqual(["create on server 1 at t=500: answered 201 after 4500 ms (800 ms of it the campaign's own stall) (bound 3000 ms)"]);
  });

  it('reports an unhandled error line a server logged, and a process past the RSS limit', () => {
    const events = history({ type: 'log', server: 2, line: '{"level":50,"msg":"unhandled rejection"}' }, { type: 'rss', server: 1, mb: 900 });
    expect(violations(events, 'bounded')).toEqual(['server 2 logged: {"level":50,"msg":"unhandled rejection"}']);
    expect(violations(events, 'rss')).toEqual(['server 1 reached 900 MB RSS (limit 600 MB)']);
  });

  it('marks an invariant KNOWN when each of its violations is a known one, and FAIL when one is new', () => {
    const known: KnownViolation = { id: 'lost-500', invariant: ['bounded'], description: 'a 500 on poll', seed: '42 single', matches: (v) => v.message.includes('answered 500') };
    const knownOnly = history({ type: 'poll', poller: 'p', bookId: 'b', server: 0, status: 500, ms: 5 });
    const report = checkHistory(knownOnly, [known]);
    expect(report.results.find((r) => r.invariant === 'bounded')).toMatchObject({ verdict: 'KNOWN', known: ['lost-500'] });
    expect(report.ok).toBe(true);
    const withNew = history({ type: 'poll', poller: 'p', bookId: 'b', server: 0, status: 500, ms: 5 }, { type: 'poll', poller: 'p', bookId: 'b', server: 0, status: 502, ms: 5 });
    expect(verdicts(withNew, [known]).bounded).toBe('FAIL');
  });

  it('prints each verdict with its counterexample and the seed to replay', () => {
    const text = formatReport(checkHistory(history({ type: 'poll', poller: 'p', bookId: 'b', server: 0, status: 500, ms: 5 })));
    expect(text).toContain('CHAOS_SEED=42');
    expect(text).toContain('FAIL  bounded (4 checked, 1 violations, 1 new)');
    expect(text).toContain('NEW   poll of b on server 0');
    expect(text).toContain('poll of b on server 0 at t=895: answered 500');
    expect(text).toContain('replay with CHAOS_SEED=42 npm run chaos -- --mode single');
  });
});
