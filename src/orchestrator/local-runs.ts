import type { BookProgress } from '../progress/schema.js';
import { isTerminal } from '../progress/schema.js';
import { FencedError } from '../progress/tracker.js';
import type { Writer } from '../progress/tracker.js';
import { rootMessage } from '../store/failures.js';
import type { Run } from '../store/runs.js';
import type { BookSpec } from './generator.js';
import type { OrchestratorDeps, OrchestratorStats } from './deps.js';
import { startPipeline } from './pipeline.js';
import type { PipelineResult } from './pipeline.js';
import { ProgressPublisher } from './publisher.js';
import { retryInfrastructure } from './retry.js';

export const QUEUED_MESSAGE = 'Queued: waiting for a free generation slot';
/** Abort reasons of a local run. */
const SHUTDOWN = 'shutdown';
const SUPERSEDED = 'superseded';

interface Active {
  epoch: number;
  controller: AbortController;
  settled: Promise<PipelineResult>;
  /** Claim order, so a renewal only judges runs claimed before it was sent. */
  seq: number;
  /** The run is being marked done: no longer renewed, and that is not a loss. */
  ending: boolean;
}

/**
 * The runs this process executes: each claimed run's pipeline, its end (marked done, or handed
 * back to the queue at shutdown) and a cancel's final state. `onEnded` is called after each
 * local run ends, so the queue fills the freed slot.
 */
export class LocalRuns {
  readonly #deps: OrchestratorDeps;
  readonly #stats: OrchestratorStats;
  readonly #onEnded: () => void;
  readonly #active = new Map<string, Active>();
  #claimSeq = 0;

  constructor(deps: OrchestratorDeps, stats: OrchestratorStats, onEnded: () => void) {
    this.#deps = deps;
    this.#stats = stats;
    this.#onEnded = onEnded;
  }

  /** Books running in this process. */
  get size(): number {
    return this.#active.size;
  }

  /** The last claim order handed out: a renewal sent now judges the runs up to it. */
  get claimSeq(): number {
    return this.#claimSeq;
  }

  bookIds(): string[] {
    return [...this.#active.keys()];
  }

  /** Resolves when the book's local run ends; undefined if not running here. */
  settled(bookId: string): Promise<PipelineResult> | undefined {
    return this.#active.get(bookId)?.settled;
  }

  /** Shutdown: stops every local run (each hands itself back); resolves with their ends to wait for. */
  abortAll(): Array<Promise<PipelineResult>> {
    const active = [...this.#active.values()];
    for (const entry of active) entry.controller.abort(SHUTDOWN);
    return active.map((entry) => entry.settled);
  }

  /** Stops each run claimed up to `sentAfter` whose lease `held` (book → epoch) no longer shows. */
  stopLost(held: Map<string, number>, sentAfter: number): void {
    for (const [bookId, entry] of this.#active) {
      if (entry.seq > sentAfter || entry.ending || held.get(bookId) === entry.epoch) continue;
      this.#deps.log.warn({ bookId, epoch: entry.epoch }, 'lost the lease of a run; stopping it');
      entry.controller.abort(SUPERSEDED);
    }
  }

  /** Runs a claimed run here; a local run of an older epoch of the book is stopped first. */
  launch(run: Run, isNew: boolean): { announced: Promise<void>; settled: Promise<PipelineResult> } {
    const previous = this.#active.get(run.bookId);
    previous?.controller.abort(SUPERSEDED);
    const controller = new AbortController();
    let announce = () => {};
    const announced = new Promise<void>((resolve) => (announce = resolve));
    const entry: Active = { epoch: run.epoch, controller, seq: ++this.#claimSeq, ending: false, settled: Promise.resolve('ABORTED') };
    entry.settled = (async () => {
      await previous?.settled;
      return this.#execute(run, entry, isNew, announce);
    })()
      .catch(async (error: unknown) => {
        // Stopped (shutdown, superseded) while a backend was down: the lease runs out, another claim resumes it.
        if (controller.signal.aborted) return 'ABORTED' as const;
        this.#deps.log.error({ bookId: run.bookId, err: rootMessage(error) }, 'book run crashed');
        // Back to the queue, so it is not stranded under this process's name.
        await this.#deps.runs.release(run.bookId, run.epoch).catch(() => {});
        return 'ABORTED' as const;
      })
      .finally(() => {
        announce();
        if (this.#active.get(run.bookId) === entry) this.#active.delete(run.bookId);
        this.#onEnded();
      });
    this.#active.set(run.bookId, entry);
    return { announced, settled: entry.settled };
  }

  async #execute(run: Run, entry: Active, isNew: boolean, announce: () => void): Promise<PipelineResult> {
    const { runs, log } = this.#deps;
    const { signal } = entry.controller;
    const { bookId, epoch } = run;
    const writer = runWriter(run);
    const finish = async (result: PipelineResult) => {
      entry.ending = true;
      if (!(await retryInfrastructure(() => runs.finish(bookId, epoch), { what: 'ending a run', log, signal }))) {
        log.info({ bookId, epoch }, 'run ended after another process took it over');
      }
      return result;
    };
    if (run.cancelRequested) {
      announce();
      return this.#finishCancel(run, signal, finish);
    }

    let held: BookProgress | null = null;
    if (!isNew) {
      // The claim is kept while the state cannot be read (renewed, so no other process takes
      // it): handing it back would only have it claimed again at once, in a loop.
      try {
        held = await retryInfrastructure(() => this.#deps.readState(bookId), { what: "reading a claimed book's state", log, signal });
      } catch (error) {
        if (!signal.aborted) throw error;
        if (signal.reason === SHUTDOWN) await this.#handBack(run);
        return 'ABORTED';
      }
      // A terminal state of this run was committed, and its process stopped before marking the run done.
      if (held && isTerminal(held.status) && held.version > run.baseVersion) return finish(held.status as PipelineResult);
    }
    const saved = isNew ? new Set<number>() : await retryInfrastructure(() => runs.savedChapters(bookId), { what: 'reading the saved chapters', log, signal });
    const resumed = run.claims > 1;
    if (resumed) {
      this.#stats.resumed++;
      log.info({ bookId, epoch, savedChapters: saved.size }, 'resuming an interrupted book');
    }
    const spec: BookSpec = { bookId, title: run.title, chapters: run.chapters, sectionsPerChapter: run.sectionsPerChapter };
    const { finished } = await startPipeline(
      { spec, epoch, outline: run.outline, saved, resumed, retried: run.baseVersion > 0, held },
      {
        ...this.#deps,
        signal,
        writer,
        onRetry: () => this.#stats.retries++,
        onSuperseded: () => entry.controller.abort(SUPERSEDED),
      },
    );
    announce();
    const result = await finished;
    if (result !== 'ABORTED') return finish(result);
    if (signal.reason === SHUTDOWN) await this.#handBack(run);
    else log.warn({ bookId, epoch }, 'run superseded by another; stopped without writing more');
    return result;
  }

  async #finishCancel(run: Run, signal: AbortSignal, finish: (result: PipelineResult) => Promise<PipelineResult>): Promise<PipelineResult> {
    const { tracker, log } = this.#deps;
    const publisher = new ProgressPublisher(tracker, run.bookId, log, { signal, fence: run.epoch, writer: runWriter(run) });
    try {
      // The runner may have committed its terminal state and not yet marked the run done: that state stays.
      const held = await retryInfrastructure(() => this.#deps.readState(run.bookId), { what: "reading a cancelled book's state", log, signal });
      if (held && isTerminal(held.status) && held.version > run.baseVersion) {
        log.info({ bookId: run.bookId, status: held.status }, 'cancel came after the book ended; its state stays');
        return await finish(held.status as PipelineResult);
      }
      await publisher.finish((t, options) => t.updateProgress(run.bookId, { status: 'ERROR', error: 'cancelled', message: 'Generation cancelled' }, options));
    } catch (error) {
      if (signal.aborted || error instanceof FencedError) {
        if (signal.reason === SHUTDOWN) await this.#handBack(run);
        return 'ABORTED';
      }
      throw error;
    }
    log.info({ bookId: run.bookId }, 'book cancelled');
    return finish('ERROR');
  }

  /** Shutdown: the run goes back to the queue at once (not when its lease runs out), and its state says so. */
  async #handBack(run: Run): Promise<void> {
    const { runs, tracker, log } = this.#deps;
    try {
      if (!(await runs.release(run.bookId, run.epoch))) return;
      log.info({ bookId: run.bookId }, 'run handed back at shutdown');
      await tracker.updateProgress(run.bookId, { message: QUEUED_MESSAGE }, { fence: run.epoch, writer: runWriter(run) });
    } catch (error) {
      // Nothing lost: the run resumes when its lease runs out, or the state shows once it is claimed.
      log.warn({ bookId: run.bookId, err: rootMessage(error) }, 'handing a run back at shutdown failed');
    }
  }
}

/** Whose book a run writes: every state it commits is its tenant's (a first state too), whoever wrote before. */
export function runWriter(run: Run): Writer {
  return { tenant: run.tenant, anyTenant: true };
}
