import type { FaultLine, FaultLog } from '../../fault-log.js';
import type { Orchestrator } from '../../orchestrator/orchestrator.js';
import type { SnapshotRound, Snapshotter } from '../../store/snapshotter.js';
import type { ActiveRun, RunStore } from '../../store/runs.js';
import type { Hub } from '../delivery/hub.js';
import type { StreamKind, StreamRegistry } from '../delivery/stream-registry.js';
import type { ReadinessReport } from './readiness.js';

/** Books and runs the operator view lists at most: a page a person reads, not an export. */
export const ADMIN_LIST_LIMIT = 100;

export type Transport = StreamKind | 'websocket';

/** What GET /api/admin/status answers: this process's own state, and the cluster-wide queue. */
export interface AdminStatus {
  at: number;
  process: { owner: string; startedAt: number; pid: number };
  health: ReadinessReport;
  connections: {
    total: number;
    byTransport: Record<Transport, number>;
    /** Connections per tenant (null: callers without one, open mode), by transport. */
    byTenant: Array<{ tenant: string | null; total: number } & Partial<Record<Transport, number>>>;
    /** Polls answered (GET /api/ai/progress/:id) in the last full minute of the clock and in this one so far; books followed for them. */
    polls: { lastMinute: number; thisMinute: number; polledBooks: number };
  };
  books: { watched: number; watchers: number; everyBookWatchers: number; list: Array<{ bookId: string; watchers: number; tenant: string | null }> };
  snapshots: {
    intervalMs: number;
    /** Ms since this process's last round that wrote its claim; null: none yet. */
    lagMs: number | null;
    lastRound: SnapshotRound | null;
    taken: number;
    rowsWritten: number;
    failures: number;
    waitingForDatabase: number;
  };
  generations: {
    runningHere: number;
    queued: number;
    running: number;
    stalled: number;
    retrying: number;
    generatorRetries: number;
    resumed: number;
    /** Null when the database did not answer; `error` says why. */
    runs: ActiveRun[] | null;
    error?: string;
  };
  faults: { totals: Record<string, number>; recent: readonly FaultLine[] };
}

export interface AdminStatusSources {
  owner: string;
  startedAt: number;
  streams: StreamRegistry;
  websockets: { connections(): Iterable<{ tenant: string | null; books: number }> };
  hub: Hub;
  readiness: { check(): Promise<ReadinessReport> };
  snapshotter: Snapshotter;
  runs: Pick<RunStore, 'active'>;
  orchestrator: Pick<Orchestrator, 'running' | 'stats'>;
  faults: FaultLog;
  now?: () => number;
}

/** The operator view's answer, read from the parts when asked (nothing is counted on the hot paths). */
export function adminStatus(sources: AdminStatusSources): () => Promise<AdminStatus> {
  const now = sources.now ?? Date.now;
  return async () => {
    const [health, runs] = await Promise.all([
      sources.readiness.check(),
      sources.runs.active(ADMIN_LIST_LIMIT).then(
        (list) => ({ list, error: undefined }),
        (error: unknown) => ({ list: null, error: (error as Error).message }),
      ),
    ]);
    const at = now();
    const byTransport: Record<Transport, number> = { sse: 0, multiplexed: 0, 'every-book': 0, websocket: 0 };
    const tenants = new Map<string | null, { tenant: string | null; total: number } & Partial<Record<Transport, number>>>();
    const count = (transport: Transport, tenant: string | null) => {
      byTransport[transport]++;
      let row = tenants.get(tenant);
      if (!row) tenants.set(tenant, (row = { tenant, total: 0 }));
      row.total++;
      row[transport] = (row[transport] ?? 0) + 1;
    };
    for (const label of sources.streams.labels()) count(label.kind, label.tenant);
    for (const ws of sources.websockets.connections()) count('websocket', ws.tenant);
    const hubStats = sources.hub.stats();
    const { snapshotter, orchestrator, faults } = sources;
    const written = snapshotter.lastWrittenAt;
    const list = runs.list ?? [];
    return {
      at,
      process: { owner: sources.owner, startedAt: sources.startedAt, pid: process.pid },
      health,
      connections: {
        total: Object.values(byTransport).reduce((a, b) => a + b, 0),
        byTransport,
        byTenant: [...tenants.values()].sort((a, b) => b.total - a.total || String(a.tenant).localeCompare(String(b.tenant))),
        polls: sources.hub.pollStats(),
      },
      books: { watched: hubStats.topics, watchers: hubStats.watchers, everyBookWatchers: hubStats.everyBookWatchers, list: sources.hub.watchedBooks(ADMIN_LIST_LIMIT) },
      snapshots: {
        intervalMs: snapshotter.intervalMs,
        lagMs: written === null ? null : at - written,
        lastRound: snapshotter.lastRound,
        taken: snapshotter.stats.snapshots,
        rowsWritten: snapshotter.stats.rowsWritten,
        failures: snapshotter.stats.failures,
        waitingForDatabase: snapshotter.stats.waitingForDatabase,
      },
      generations: {
        runningHere: orchestrator.running,
        queued: list.filter((run) => run.state === 'queued').length,
        running: list.filter((run) => run.state === 'running').length,
        stalled: list.filter((run) => run.state === 'stalled').length,
        retrying: list.filter((run) => run.retry).length,
        generatorRetries: orchestrator.stats.retries,
        resumed: orchestrator.stats.resumed,
        runs: runs.list,
        ...(runs.error === undefined ? {} : { error: runs.error }),
      },
      faults: { totals: Object.fromEntries(faults.totals()), recent: faults.recent() },
    };
  };
}
