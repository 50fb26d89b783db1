import { Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RecordedBatch } from '../../analytics/recorder.js';
import type { Broker } from '../../broker/broker.js';
import { FAULT_KINDS } from '../../fault-log.js';
import type { FaultLog } from '../../fault-log.js';
import type { Orchestrator } from '../../orchestrator/orchestrator.js';
import type { ProgressStoreStats } from '../../store/progress.js';
import type { Snapshotter } from '../../store/snapshotter.js';
import type { Hub } from '../delivery/hub.js';
import type { StreamRegistry } from '../delivery/stream-registry.js';

export interface MetricSources {
  hub: Hub;
  streams: StreamRegistry;
  broker: Broker;
  storeStats: ProgressStoreStats;
  snapshotter: Snapshotter;
  orchestrator: Orchestrator;
  websocketConnections: () => number;
  /** Backend faults by kind (`redis_full`: commits refused by a Redis out of memory). */
  faults?: FaultLog;
}

/**
 * Prometheus metrics, read from the parts when scraped (nothing is counted on the hot paths),
 * plus Node's defaults (event loop lag, heap, active handles).
 */
export function createMetrics(sources: MetricSources): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });

  gauge('booksai_sse_streams', 'Open SSE streams', () => sources.streams.size);
  gauge('booksai_websocket_connections', 'Open WebSocket connections', sources.websocketConnections);
  gauge('booksai_sse_buffered_bytes', 'Bytes waiting in SSE responses for slow clients', () => sources.streams.bufferedBytes());
  gauge('booksai_hub_topics', 'Books this process follows (one broker subscription each)', () => sources.hub.stats().topics);
  gauge('booksai_hub_watchers', 'Watchers across all followed books', () => sources.hub.stats().watchers);
  gauge('booksai_broker_live', '1 while broker subscriptions deliver every update', () => (sources.broker.isLive() ? 1 : 0));
  gauge('booksai_db_queries_total', 'Database queries sent by the progress store', () => sources.storeStats.queries);
  gauge('booksai_db_upsert_statements_total', 'Snapshot upsert statements', () => sources.storeStats.upsertStatements);
  gauge('booksai_db_rows_written_total', 'Book rows written by snapshots', () => sources.storeStats.rowsWritten);
  gauge('booksai_snapshots_total', 'Snapshots taken by this process', () => sources.snapshotter.stats.snapshots);
  gauge('booksai_snapshot_failures_total', 'Snapshots that failed and were retried', () => sources.snapshotter.stats.failures);
  gauge('booksai_states_waiting_for_database', 'First and terminal states queued until the database answers', () => sources.snapshotter.stats.waitingForDatabase);
  gauge('booksai_generations_running', 'Book generations running in this process', () => sources.orchestrator.running);
  gauge('booksai_generations_queued', 'Books waiting for a generation slot, cluster-wide (as of the last look at the queue)', () => sources.orchestrator.stats.queued);
  gauge('booksai_generations_resumed_total', 'Interrupted generations this process resumed', () => sources.orchestrator.stats.resumed);
  gauge('booksai_generation_retries_total', 'Generator calls this process retried after a failure', () => sources.orchestrator.stats.retries);
  const faults = sources.faults;
  if (faults) {
    new Gauge({
      name: 'booksai_backend_faults_total',
      help: `Backend faults by kind: ${FAULT_KINDS.join(', ')}`,
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        for (const [kind, count] of faults.totals()) this.set({ kind }, count);
      },
    });
  }
  return registry;
}

/** Seconds: a step or a run of a generation takes from about a second to an hour. */
const STEP_BUCKETS = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1_800, 3_600];
const RUN_BUCKETS = [5, 10, 20, 30, 60, 120, 300, 600, 1_200, 1_800, 3_600, 7_200];

/**
 * `booksai_step_duration_seconds{step}` and `booksai_run_duration_seconds{status}`, fed from the
 * timeline fold (TimelineFeed's onRecorded): exact step spans and runs that ended, each counted
 * by the one process that wrote it first, so the sum over instances counts each once.
 */
export function registerTimelineMetrics(registry: Registry): (batch: RecordedBatch) => void {
  const steps = new Histogram({ name: 'booksai_step_duration_seconds', help: 'Duration of finished generation steps (exact spans of the run timelines)', labelNames: ['step'], buckets: STEP_BUCKETS, registers: [registry] });
  const runs = new Histogram({ name: 'booksai_run_duration_seconds', help: 'Duration of ended runs, by final status (COMPLETE, ERROR)', labelNames: ['status'], buckets: RUN_BUCKETS, registers: [registry] });
  return (batch) => {
    for (const span of batch.written.spans) if (span.kind === 'step' && span.exact) steps.observe({ step: span.step }, (span.endedAt - span.startedAt) / 1000);
    for (const run of batch.written.ended) if (run.endedAt !== null) runs.observe({ status: run.status }, Math.max(0, run.endedAt - run.startedAt) / 1000);
  };
}
