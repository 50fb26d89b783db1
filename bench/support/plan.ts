/** How long and how large each scenario runs: the full run (< 15 min) and `--quick` (< 2 min). */

export interface Plan {
  quick: boolean;
  /** Run only this scenario (an experiment: no floors, no results file). */
  only: 'fanout' | 'embedded' | 'deltas' | 'poll' | null;
  poll: {
    connections: number;
    durationSec: number;
    /** Rounds of runs, the targets alternating in each; the report takes each one's median. */
    repeats: number;
    /** Also run B0 and B1 with If-None-Match (the server always runs both paths). */
    baselinesNotModified: boolean;
    /** One more server run under `--cpu-prof`, not counted in the figures (`--no-profile` skips it). */
    profile: boolean;
  };
  fanout: {
    sizes: number[];
    /**
     * Publishing time of (a) and of (b). (a) carries the floors: its window is long enough that
     * one hiccup of this shared machine does not make its p99, and that every target's window
     * holds one snapshot round of the server (rounds come every 30 s).
     */
    durationMs: { a: number; b: number; c: number };
    /** Longest wait after publishing for every client to reach the latest version. */
    settleMs: number;
    connectTimeoutMs: number;
    /** Wait between the last connect and the idle memory reading, and after the warm-up. */
    idleMs: number;
    /** Publishing at (a)'s rate before (a) is measured. */
    warmupMs: number;
    ownBookHz: number;
    oneBookHz: number;
    /** (c): HTTP publishes to the target at this rate in all, over clients / watchersPerBook books. */
    shared: { publishesPerSecond: number; watchersPerBook: number };
    /** Which targets and shapes run; every one by default. */
    targets: Array<'server' | 'b3' | 'socketio'>;
    shapes: Array<'a' | 'b' | 'c'>;
    /** Rounds over the targets (alternating), for medians. */
    repeats: number;
    /** Ask each target's probe for event-loop delay and GC pauses while publishing. */
    loopStats: boolean;
    /** Extra environment for the server under test, e.g. SNAPSHOT_INTERVAL_MS for an experiment. */
    serverEnv: Record<string, string>;
    /** Write the server's V8 CPU profile (whole life) into this directory. */
    serverCpuProfileDir: string | null;
    /** Extra Node/V8 flags for the server under test, e.g. `--trace-gc` (with `--keep-logs` to read it). */
    serverNodeArgs: string[];
    /**
     * How the publisher feeds the server: its Lua commit (the protocol), or a bare PUBLISH of the
     * same JSON, as B3 is fed (an experiment: the server's own share of the latency).
     */
    serverPublish: 'commit' | 'publish';
  };
  churn: { durationMs: number; concurrency: number; maxConnects: number };
  database: { books: number; hz: number; durationMs: number; snapshotIntervalMs: number };
  /** The embedded default (no Redis, no Postgres): how long it idles before its RSS is read. */
  embedded: { idleMs: number };
}

/** Narrows a run for experiments (`--only fanout --sizes 10000 --targets server,b3 --shapes a`). */
export interface PlanOverrides {
  /** Run only this scenario; every scenario (and the floors) when absent. */
  only?: 'fanout' | 'embedded' | 'deltas' | 'poll';
  /** Rounds of the poll runs (3 in a full run, 1 in a quick one), and of the fan-out targets with `--only fanout`. */
  repeats?: number;
  sizes?: number[];
  targets?: Plan['fanout']['targets'];
  shapes?: Plan['fanout']['shapes'];
  loopStats?: boolean;
  serverEnv?: Record<string, string>;
  serverCpuProfileDir?: string;
  serverNodeArgs?: string[];
  serverPublish?: 'commit' | 'publish';
}

export function makePlan(quick: boolean, profile: boolean | null, overrides: PlanOverrides = {}): Plan {
  return {
    quick,
    only: overrides.only ?? null,
    poll: { connections: 50, durationSec: quick ? 3 : 10, repeats: overrides.repeats ?? (quick ? 1 : 3), baselinesNotModified: !quick, profile: profile ?? true },
    fanout: {
      sizes: overrides.sizes ?? (quick ? [1_000] : [1_000, 5_000, 10_000]),
      durationMs: quick ? { a: 3_000, b: 3_000, c: 3_000 } : { a: 30_000, b: 10_000, c: 30_000 },
      settleMs: quick ? 3_000 : 5_000,
      connectTimeoutMs: 60_000,
      idleMs: quick ? 500 : 1_000,
      warmupMs: quick ? 1_000 : 3_000,
      ownBookHz: 1,
      oneBookHz: 10,
      shared: { publishesPerSecond: 200, watchersPerBook: 100 },
      targets: overrides.targets ?? ['server', 'b3', 'socketio'],
      shapes: overrides.shapes ?? ['a', 'b', 'c'],
      repeats: overrides.only === 'fanout' ? (overrides.repeats ?? 1) : 1,
      loopStats: overrides.loopStats ?? false,
      serverEnv: overrides.serverEnv ?? {},
      serverCpuProfileDir: overrides.serverCpuProfileDir ?? null,
      serverNodeArgs: overrides.serverNodeArgs ?? [],
      serverPublish: overrides.serverPublish ?? 'commit',
    },
    churn: { durationMs: quick ? 3_000 : 10_000, concurrency: 100, maxConnects: 100_000 },
    database: { books: 1_000, hz: 1, durationMs: quick ? 20_000 : 120_000, snapshotIntervalMs: quick ? 5_000 : 30_000 },
    embedded: { idleMs: quick ? 3_000 : 10_000 },
  };
}
