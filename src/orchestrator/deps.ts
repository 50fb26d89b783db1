import type { Logger } from 'pino';
import type { TextLog } from '../broker/text-log.js';
import type { BookProgress } from '../progress/schema.js';
import type { ProgressTracker } from '../progress/tracker.js';
import type { RunStore } from '../store/runs.js';
import type { Generator } from './generator.js';
import type { TextSink } from './section-text.js';

export interface OrchestratorDeps {
  tracker: ProgressTracker;
  runs: RunStore;
  generator: Generator;
  /** The book's latest state (the broker's, else the database's); throws while it cannot tell. */
  readState: (bookId: string) => Promise<BookProgress | null>;
  log: Logger;
  /** Unique per process: the holder of the leases it takes. */
  owner: string;
  /** Runs at once in this process (MAX_GENERATIONS); 0: it only queues books for others. */
  maxGenerations: number;
  /** RUN_LEASE_MS: a run whose lease is not renewed within this long is resumed elsewhere. */
  leaseMs: number;
  generatorRetries: number;
  /** Gets the live text of every section written here (passed to each run's pipeline). */
  onText?: TextSink;
  /** Where each run writes its live text, under its fence. */
  texts?: TextLog;
}

/** Counters for /metrics, read when scraped. */
export interface OrchestratorStats {
  /** Generator calls retried by this process. */
  retries: number;
  /** Interrupted runs this process took up again. */
  resumed: number;
  /** Runs waiting for a slot cluster-wide, as of this process's last poll. */
  queued: number;
}
