import { TERMINAL } from './history.js';
import type { FaultKind, HistoryEvent, Seen } from './history.js';
import type { KnownViolation } from './known-violations.js';

/** The promises the campaign checks, in the order they are reported. */
export const INVARIANTS = ['monotonic', 'converged', 'chapters', 'acknowledged', 'bounded', 'rss'] as const;
export type Invariant = (typeof INVARIANTS)[number];

/** One counterexample: where in the history a promise was broken. */
export interface Violation {
  invariant: Invariant;
  /** The book, watcher or server it concerns, for matching known violations. */
  subject: string;
  message: string;
  t?: number;
}

export interface InvariantResult {
  invariant: Invariant;
  /** KNOWN: every violation is one listed in known-violations.ts (to be fixed), none new. */
  verdict: 'PASS' | 'FAIL' | 'KNOWN';
  /** Observations the invariant was checked on. */
  checked: number;
  violations: Violation[];
  /** The known violations that matched, by id. */
  known: string[];
  /** The violations no known violation explains. */
  unknown: Violation[];
}

export interface CheckReport {
  seed: number;
  mode: string;
  faults: number;
  operations: number;
  results: InvariantResult[];
  /** Faults the harness could not inject or heal (not a verdict on the server, but a run to read). */
  harnessErrors: string[];
  ok: boolean;
}

const describe = (s: Seen) => `v${s.version} ${s.status} "${s.message}"`;
const sameState = (a: Seen, b: Seen) => a.version === b.version && a.status === b.status && a.message === b.message;

/** Time windows during which server `i` could not answer (killed, stopping, or frozen). */
function downWindows(events: readonly HistoryEvent[], endT: number): Map<number, Array<[number, number]>> {
  const open = new Map<number, { server: number; from: number }>();
  const windows = new Map<number, Array<[number, number]>>();
  const serverFaults: ReadonlySet<FaultKind> = new Set(['server-kill', 'server-term', 'server-stop']);
  for (const e of events) {
    if (e.type !== 'fault' || !serverFaults.has(e.kind) || !e.target?.startsWith('server-')) continue;
    const server = Number(e.target.slice('server-'.length));
    if (e.phase === 'start') open.set(e.id, { server, from: e.t });
    else {
      const started = open.get(e.id);
      open.delete(e.id);
      if (started) windows.set(server, [...(windows.get(server) ?? []), [started.from, e.t]]);
    }
  }
  for (const { server, from } of open.values()) windows.set(server, [...(windows.get(server) ?? []), [from, endT]]);
  return windows;
}

function monotonic(events: readonly HistoryEvent[]): { checked: number; violations: Violation[] } {
  const last = new Map<string, { state: Seen; t: number }>();
  const violations: Violation[] = [];
  let checked = 0;
  const see = (observer: string, bookId: string, state: Seen, t: number) => {
    checked++;
    const key = `${observer} ${bookId}`;
    const before = last.get(key);
    if (before) {
      const b = before.state;
      const subject = `${observer} of ${bookId}`;
      if (state.version < b.version) violations.push({ invariant: 'monotonic', subject, t, message: `${subject}: ${describe(state)} after ${describe(b)} (t=${before.t})` });
      else if (state.version === b.version && !sameState(state, b)) violations.push({ invariant: 'monotonic', subject, t, message: `${subject}: two states with version ${state.version}: ${describe(b)}, then ${describe(state)}` });
      else if (TERMINAL.has(b.status) && !TERMINAL.has(state.status)) violations.push({ invariant: 'monotonic', subject, t, message: `${subject}: ${describe(state)} after the terminal ${describe(b)}` });
    }
    if (!before || state.version >= before.state.version) last.set(key, { state, t });
  };
  for (const e of events) {
    if (e.type === 'event') see(e.watcher, e.bookId, e.state, e.t);
    else if (e.type === 'poll' && e.status === 200 && e.state) see(e.poller, e.bookId, e.state, e.t);
  }
  return { checked, violations };
}

function converged(events: readonly HistoryEvent[]): { checked: number; violations: Violation[] } {
  const violations: Violation[] = [];
  let checked = 0;
  const redisLost = events.some((e) => e.type === 'fault' && e.phase === 'start' && e.kind === 'redis-restart');
  const reference = new Map<string, Seen>();
  for (const e of events) {
    if (e.type !== 'final') continue;
    checked++;
    const v = (message: string) => violations.push({ invariant: 'converged', subject: e.bookId, t: e.t, message: `${e.bookId}: ${message}` });
    if (e.postgres === null) v(`not in Postgres (Redis holds ${e.redis ? describe(e.redis) : 'nothing'})`);
    if (e.redis === null && !redisLost) v(`not in Redis, though Redis never lost its data (Postgres holds ${e.postgres ? describe(e.postgres) : 'nothing'})`);
    if (e.redis && e.postgres && !sameState(e.redis, e.postgres)) v(`Redis holds ${describe(e.redis)}, Postgres ${describe(e.postgres)}`);
    const ref = e.redis ?? e.postgres;
    if (ref) reference.set(e.bookId, ref);
  }
  for (const e of events) {
    if (e.type !== 'final-watcher' || !e.connected) continue;
    for (const [bookId, seen] of Object.entries(e.last)) {
      checked++;
      const ref = reference.get(bookId);
      if (ref && !sameState(seen, ref)) {
        violations.push({ invariant: 'converged', subject: `${e.watcher} of ${bookId}`, t: e.t, message: `${e.watcher} ends on ${describe(seen)} of ${bookId}, the book on ${describe(ref)}` });
      }
    }
  }
  return { checked, violations };
}

function chapters(events: readonly HistoryEvent[]): { checked: number; violations: Violation[] } {
  const violations: Violation[] = [];
  let checked = 0;
  for (const e of events) {
    if (e.type !== 'final' || e.expectedChapters === undefined) continue;
    const v = (message: string) => violations.push({ invariant: 'chapters', subject: e.bookId, t: e.t, message: `${e.bookId}: ${message}` });
    const ref = e.redis ?? e.postgres;
    if (ref?.status !== 'COMPLETE') v(`the demo book ends ${ref ? describe(ref) : 'nowhere'}, not COMPLETE`);
    const rows = e.chapters ?? [];
    for (let n = 1; n <= e.expectedChapters; n++) {
      checked++;
      const found = rows.filter((r) => r.number === n);
      if (found.length !== 1) v(`chapter ${n} is in Postgres ${found.length} times`);
      else if (!found[0]!.matches) v(`chapter ${n} is not the generator's text`);
      else if (found[0]!.rewritten) v(`chapter ${n} was rewritten (updated_at after created_at)`);
    }
    for (const r of rows) if (r.number < 1 || r.number > e.expectedChapters) v(`an extra chapter ${r.number}`);
  }
  return { checked, violations };
}

function acknowledged(events: readonly HistoryEvent[]): { checked: number; violations: Violation[] } {
  const violations: Violation[] = [];
  const final = new Map<string, Seen | null>();
  for (const e of events) if (e.type === 'final') final.set(e.bookId, e.redis ?? e.postgres);
  let checked = 0;
  for (const e of events) {
    if (e.type !== 'publish' || e.status !== 200 || !e.state) continue;
    checked++;
    const ref = final.get(e.bookId);
    const acked = e.state;
    const subject = e.bookId;
    if (!ref) violations.push({ invariant: 'acknowledged', subject, t: e.t, message: `${subject}: ${describe(acked)} was acknowledged (${e.via}), and the book is nowhere at the end` });
    else if (ref.version < acked.version || (ref.version === acked.version && !sameState(ref, acked))) {
      violations.push({ invariant: 'acknowledged', subject, t: e.t, message: `${subject}: ${describe(acked)} was acknowledged (${e.via}), the book ends on ${describe(ref)}` });
    }
  }
  return { checked, violations };
}

function bounded(events: readonly HistoryEvent[], boundMs: number): { checked: number; violations: Violation[] } {
  const endT = events.at(-1)?.t ?? 0;
  const down = downWindows(events, endT);
  const excused = (server: number, from: number, to: number) => (down.get(server) ?? []).some(([a, b]) => a <= to && b >= from);
  // The campaign's own stalls (a loaded machine) inside an answer's window, taken off its time.
  const lags = events.flatMap((e) => (e.type === 'lag' ? [{ from: e.t - e.ms, to: e.t }] : []));
  const stalled = (from: number, to: number) => lags.reduce((sum, l) => sum + Math.max(0, Math.min(to, l.to) - Math.max(from, l.from)), 0);
  const violations: Violation[] = [];
  let checked = 0;
  for (const e of events) {
    if (e.type === 'log') {
      violations.push({ invariant: 'bounded', subject: `server-${e.server}`, t: e.t, message: `server ${e.server} logged: ${e.line.slice(0, 300)}` });
      continue;
    }
    if ((e.type !== 'publish' && e.type !== 'poll' && e.type !== 'create') || e.server === undefined) continue;
    checked++;
    const what = `${e.type} ${'bookId' in e && e.bookId ? `of ${e.bookId} ` : ''}on server ${e.server}`;
    const v = (message: string) => violations.push({ invariant: 'bounded', subject: `server-${e.server}`, t: e.t, message: `${what} at t=${e.t - Math.round(e.ms)}: ${message}` });
    const inFault = excused(e.server, e.t - e.ms, e.t);
    if (e.status === null) {
      if (!inFault) v(`no answer (${e.error ?? 'unknown error'}) after ${Math.round(e.ms)} ms, the server up`);
    } else if (e.status >= 500 && e.status !== 503) v(`answered ${e.status}`);
    else if (e.status === 503 && !e.retryAfter) v('answered 503 without Retry-After');
    else if (e.ms - stalled(e.t - e.ms, e.t) > boundMs && !inFault) {
      const lag = stalled(e.t - e.ms, e.t);
      v(`answered ${e.status} after ${Math.round(e.ms)} ms${lag ? ` (${lag} ms of it the campaign's own stall)` : ''} (bound ${boundMs} ms)`);
    }
  }
  return { checked, violations };
}

function rss(events: readonly HistoryEvent[], limitMb: number): { checked: number; violations: Violation[] } {
  const worst = new Map<number, { mb: number; t: number }>();
  let checked = 0;
  for (const e of events) {
    if (e.type !== 'rss') continue;
    checked++;
    if (e.mb > (worst.get(e.server)?.mb ?? 0)) worst.set(e.server, { mb: e.mb, t: e.t });
  }
  const violations: Violation[] = [];
  for (const [server, { mb, t }] of worst) {
    if (mb > limitMb) violations.push({ invariant: 'rss', subject: `server-${server}`, t, message: `server ${server} reached ${mb} MB RSS (limit ${limitMb} MB)` });
  }
  return { checked, violations };
}

/** Checks a campaign's whole history; a violation listed in `known` makes its invariant KNOWN, not FAIL. */
export function checkHistory(events: readonly HistoryEvent[], known: readonly KnownViolation[] = []): CheckReport {
  const start = events.find((e) => e.type === 'start');
  if (!start || start.type !== 'start') throw new Error('the history has no start event');
  const found: Record<Invariant, { checked: number; violations: Violation[] }> = {
    monotonic: monotonic(events),
    converged: converged(events),
    chapters: chapters(events),
    acknowledged: acknowledged(events),
    bounded: bounded(events, start.boundMs),
    rss: rss(events, start.rssLimitMb),
  };
  const results = INVARIANTS.map((invariant): InvariantResult => {
    const { checked, violations } = found[invariant];
    const matched = new Set<string>();
    const unknown = violations.filter((v) => {
      const k = known.find((k) => k.invariant.includes(invariant) && k.matches(v, events));
      if (k) matched.add(k.id);
      return !k;
    });
    const verdict = violations.length === 0 ? 'PASS' : unknown.length === 0 ? 'KNOWN' : 'FAIL';
    return { invariant, verdict, checked, violations, known: [...matched], unknown };
  });
  return {
    seed: start.seed,
    mode: start.mode,
    faults: events.filter((e) => e.type === 'fault' && e.phase === 'start').length,
    operations: events.filter((e) => e.type === 'publish' || e.type === 'poll' || e.type === 'create' || e.type === 'event').length,
    results,
    harnessErrors: events.flatMap((e) => (e.type === 'nemesis-error' ? [`fault ${e.id} (${e.kind}) at t=${e.t}: ${e.message}`] : [])),
    ok: results.every((r) => r.verdict !== 'FAIL'),
  };
}

/** The report as people read it: each invariant's verdict, with its first counterexamples and the seed. */
export function formatReport(report: CheckReport, max = 5): string {
  const lines = [`chaos ${report.mode}, CHAOS_SEED=${report.seed}: ${report.faults} faults, ${report.operations} operations`];
  for (const r of report.results) {
    lines.push(`  ${r.verdict.padEnd(5)} ${r.invariant} (${r.checked} checked${r.violations.length ? `, ${r.violations.length} violations, ${r.unknown.length} new` : ''}${r.known.length ? `, known: ${r.known.join(', ')}` : ''})`);
    const unknown = new Set(r.unknown);
    // The new ones first: those are what a reader has to look at.
    for (const v of [...r.unknown, ...r.violations.filter((v) => !unknown.has(v))].slice(0, max)) lines.push(`    ${unknown.has(v) ? 'NEW  ' : 'known'} ${v.message}`);
  }
  for (const h of report.harnessErrors.slice(0, max)) lines.push(`  harness: ${h}`);
  lines.push(report.ok ? '  all invariants held (or failed only as known)' : `  FAILED: replay with CHAOS_SEED=${report.seed} npm run chaos -- --mode ${report.mode}`);
  return lines.join('\n');
}
