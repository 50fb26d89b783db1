/** How long and how large each scenario runs: the full run (< 15 min) and `--quick` (< 2 min). */

export interface Plan {
  quick: boolean;
  poll: {
    connections: number;
    durationSec: number;
    /** Also run B0 and B1 with If-None-Match (the server always runs both paths). */
    baselinesNotModified: boolean;
    /** One more server run under `--cpu-prof`, not counted in the figures (`--no-profile` skips it). */
    profile: boolean;
  };
  fanout: {
    sizes: number[];
    /** Publishing time of each of (a) and (b). */
    durationMs: number;
    /** Longest wait after publishing for every client to reach the latest version. */
    settleMs: number;
    connectTimeoutMs: number;
    /** Wait between the last connect and the idle memory reading, and after the warm-up. */
    idleMs: number;
    /** Publishing at (a)'s rate before (a) is measured. */
    warmupMs: number;
    ownBookHz: number;
    oneBookHz: number;
  };
  churn: { durationMs: number; concurrency: number; maxConnects: number };
  database: { books: number; hz: number; durationMs: number; snapshotIntervalMs: number };
}

export function makePlan(quick: boolean, profile: boolean | null): Plan {
  return {
    quick,
    poll: { connections: 50, durationSec: quick ? 3 : 10, baselinesNotModified: !quick, profile: profile ?? true },
    fanout: {
      sizes: quick ? [1_000] : [1_000, 5_000, 10_000],
      durationMs: quick ? 3_000 : 10_000,
      settleMs: quick ? 3_000 : 5_000,
      connectTimeoutMs: 60_000,
      idleMs: quick ? 500 : 1_000,
      warmupMs: quick ? 1_000 : 3_000,
      ownBookHz: 1,
      oneBookHz: 10,
    },
    churn: { durationMs: quick ? 3_000 : 10_000, concurrency: 100, maxConnects: 100_000 },
    database: { books: 1_000, hz: 1, durationMs: quick ? 20_000 : 120_000, snapshotIntervalMs: quick ? 5_000 : 30_000 },
  };
}
