import { FaultLog } from '../fault-log.js';
import { RunAgain } from '../run-again.js';
import { rootMessage } from '../store/failures.js';
import type { Claimant } from '../store/runs.js';
import type { LocalRuns } from './local-runs.js';
import type { OrchestratorDeps, OrchestratorStats } from './deps.js';

/** Longest wait between two looks at the queue. */
const MAX_POLL_MS = 1_000;

/**
 * This process's side of the database queue: claims queued and stalled runs while it has
 * room (polled, and poked when a book is started or a run ends), and renews the leases of
 * the runs it holds.
 */
export class RunQueue {
  readonly #deps: OrchestratorDeps;
  readonly #claimant: Claimant;
  readonly #local: LocalRuns;
  readonly #stats: OrchestratorStats;
  readonly #fills = new RunAgain(() => this.#fill(), { skip: () => this.#stopping });
  #timers: NodeJS.Timeout[] = [];
  #stopping = false;
  #pollFailing = false;

  constructor(deps: OrchestratorDeps, claimant: Claimant, local: LocalRuns, stats: OrchestratorStats) {
    this.#deps = deps;
    this.#claimant = claimant;
    this.#local = local;
    this.#stats = stats;
  }

  /** Starts polling the queue and renewing the leases held. */
  begin(): void {
    const pollMs = Math.min(MAX_POLL_MS, Math.max(100, Math.round(this.#deps.leaseMs / 5)));
    this.#timers = [
      setInterval(() => this.poke(), pollMs),
      // Three renewals per lease: one may fail or come late without losing it.
      setInterval(() => void this.#renew(), Math.round(this.#deps.leaseMs / 3)),
    ];
    this.poke();
  }

  /** Stops claiming; resolves once a look at the queue under way has ended. */
  stop(): Promise<void> {
    this.#stopping = true;
    for (const timer of this.#timers) clearInterval(timer);
    return this.#fills.running ?? Promise.resolve();
  }

  hasRoom(): boolean {
    return !this.#stopping && this.#local.size < this.#deps.maxGenerations;
  }

  /** Claims runs while this process has room; polled, and poked when a book is started or a run ends. */
  poke(): void {
    this.#fills.request();
  }

  async #fill(): Promise<void> {
    try {
      while (this.hasRoom()) {
        const run = await this.#deps.runs.claimNext(this.#claimant, this.#local.bookIds());
        if (!run || this.#stopping) {
          if (run) await this.#deps.runs.release(run.bookId, run.epoch);
          break;
        }
        this.#local.launch(run, false);
      }
      this.#stats.queued = await this.#deps.runs.countQueued();
      this.#pollFailing = false;
    } catch (error) {
      // Once per outage at warn: this runs every poll.
      this.#deps.log[this.#pollFailing ? 'debug' : 'warn']({ err: rootMessage(error) }, 'looking for queued books failed; retrying');
      this.#pollFailing = true;
    }
  }

  /** Extends this process's leases; a run it no longer holds (cancelled, or taken over after a stall) is stopped. */
  async #renew(): Promise<void> {
    if (this.#local.size === 0) return;
    const sentAfter = this.#local.claimSeq;
    let held: Map<string, number>;
    try {
      held = await this.#deps.runs.renew(this.#claimant, this.#local.bookIds());
    } catch (error) {
      // Its writes stay fenced; if the lease runs out meanwhile, the next renewal tells.
      FaultLog.of(this.#deps.log).report('run_lease_renewal', 'renewing run leases failed; retrying', { err: rootMessage(error) });
      return;
    }
    this.#local.stopLost(held, sentAfter);
  }
}
