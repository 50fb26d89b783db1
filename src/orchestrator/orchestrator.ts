import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { BookProgress } from '../progress/schema.js';
import { isTerminal } from '../progress/schema.js';
import { FencedError } from '../progress/tracker.js';
import type { ProgressTracker, Writer } from '../progress/tracker.js';
import { FaultLog } from '../fault-log.js';
import { rootMessage } from '../store/failures.js';
import type { Claimant, Run, RunState, RunStore } from '../store/runs.js';
import type { BookSpec, Generator } from './generator.js';
import { startPipeline } from './pipeline.js';
import type { PipelineResult } from './pipeline.js';
import { ProgressPublisher } from './publisher.js';
import type { TextSink } from './section-text.js';
import type { TextLog } from '../broker/text-log.js';
import { isInfrastructureError, retryInfrastructure } from './retry.js';

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

export interface BookRequest {
  title: string;
  chapters: number;
  sectionsPerChapter: number;
  /** Who started it (`sub`), and the tenant the book belongs to from now on (null: none, open mode). */
  owner?: string | null;
  tenant?: string | null;
}

/** Why a cancel or retry was refused: the book is unknown, or not in a state that allows it. */
export class RunRequestError extends Error {
  override readonly name = 'RunRequestError';
  constructor(
    readonly reason: 'unknown' | 'state',
    message: string,
  ) {
    super(message);
  }
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

const QUEUED_MESSAGE = 'Queued: waiting for a free generation slot';
/**
 * How long a cancel waits for the book's final state, then for a read of the state so far,
 * before answering without it: with the claim, both within the 3 s every request is answered in.
 */
export const CANCEL_WAIT_MS = 1_000;
/** Abort reasons of a local run. */
const SHUTDOWN = 'shutdown';
const SUPERSEDED = 'superseded';
/** Longest wait between two looks at the queue. */
const MAX_POLL_MS = 1_000;

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
 * Runs book generations durably: every book started here gets a run in the database queue,
 * and each process runs at most `maxGenerations` of them under a lease it renews. A run whose
 * process died is resumed from its last saved chapter by whichever process has room once the
 * lease runs out; at shutdown, running books are handed back at once. Every write of a run
 * carries its epoch, so a process that lost its lease (frozen, partitioned) writes nothing.
 */
export class Orchestrator {
  readonly stats: OrchestratorStats = { retries: 0, resumed: 0, queued: 0 };
  readonly #deps: OrchestratorDeps;
  readonly #claimant: Claimant;
  readonly #active = new Map<string, Active>();
  /** Aborted at shutdown: queued-state publishes stop retrying. */
  readonly #shutdown = new AbortController();
  #claimSeq = 0;
  #filling: Promise<void> | null = null;
  #fillAgain = false;
  #timers: NodeJS.Timeout[] = [];
  #stopping = false;
  #pollFailing = false;

  constructor(deps: OrchestratorDeps) {
    this.#deps = deps;
    this.#claimant = { owner: deps.owner, leaseMs: deps.leaseMs };
  }

  /** Books running in this process. */
  get running(): number {
    return this.#active.size;
  }

  /** Starts taking queued and stalled runs, and renewing the leases held. */
  begin(): void {
    const pollMs = Math.min(MAX_POLL_MS, Math.max(100, Math.round(this.#deps.leaseMs / 5)));
    this.#timers = [
      setInterval(() => this.#poke(), pollMs),
      // Three renewals per lease: one may fail or come late without losing it.
      setInterval(() => void this.#renew(), Math.round(this.#deps.leaseMs / 3)),
    ];
    this.#poke();
  }

  /**
   * Creates the book and its run (throws if Postgres is down), runs it here when a slot is
   * free and queues it otherwise. Resolves once its first state is published, so a client
   * polls or watches the book right after.
   */
  async start(request: BookRequest): Promise<BookSpec> {
    const spec: BookSpec = {
      bookId: `bk_${randomBytes(8).toString('hex')}`,
      title: request.title,
      chapters: request.chapters,
      sectionsPerChapter: request.sectionsPerChapter,
    };
    const claimant = this.#hasRoom() ? this.#claimant : null;
    const tenant = request.tenant ?? null;
    const run = await this.#deps.runs.create({ id: spec.bookId, title: spec.title, owner: request.owner ?? null, tenant }, spec, claimant);
    if (claimant) {
      await this.#launch(run, true).announced;
      return spec;
    }
    // Fenced by epoch 0: once a process claims the run (epoch 1), this state can no longer land over its own.
    const publisher = new ProgressPublisher(this.#deps.tracker, spec.bookId, this.#deps.log, { signal: this.#shutdown.signal, fence: run.epoch, writer: writerOf(run) });
    await publisher.publish({
      status: 'PLANNING',
      generationStep: 'PLANNING',
      totalChapters: spec.chapters,
      totalSections: spec.sectionsPerChapter,
      currentChapter: 0,
      currentSection: 0,
      message: QUEUED_MESSAGE,
    });
    this.#poke();
    return spec;
  }

  /**
   * Stops a queued or running book, wherever it runs: it ends ERROR with error "cancelled";
   * its saved chapters stay. Resolves once the cancel is claimed, with the final state
   * (`final`) when it lands within CANCEL_WAIT_MS; otherwise it lands in the background (a
   * backend that hangs does not hold the request) and `state` is the state so far, if it
   * could be read within CANCEL_WAIT_MS more, else null.
   */
  async cancel(bookId: string): Promise<{ state: BookProgress | null; final: boolean }> {
    // A new epoch: the runner, wherever it is, can write nothing more.
    const run = await this.#deps.runs.claimForCancel(bookId, this.#claimant);
    if (!run) throw await this.#refusal(bookId, 'only a queued or running book can be cancelled');
    const ended = await within(this.#launch(run, false).settled, CANCEL_WAIT_MS);
    const state = (await within(this.#deps.readState(bookId), CANCEL_WAIT_MS).catch(() => undefined)) ?? null;
    // Its own run ended it just before the cancel landed (#finishCancel keeps that state).
    if (ended === 'COMPLETE' || (ended === 'ERROR' && state !== null && state.error !== 'cancelled')) {
      throw new RunRequestError('state', `book ${bookId} is ${ended}; only a queued or running book can be cancelled`);
    }
    return { state, final: ended === 'ERROR' };
  }

  /**
   * Queues an ERROR book again: a new run (startTime anew, versions go on) that continues from
   * its last saved chapter. Resolves with the state that shows it queued.
   */
  async retry(bookId: string): Promise<BookProgress | null> {
    const { runs, tracker } = this.#deps;
    const found = await runs.find(bookId);
    if (!found) throw await this.#refusal(bookId, 'only a book that ended ERROR can be retried');
    if (found.state !== 'done') throw new RunRequestError('state', `book ${bookId} is ${found.state}; only a book that ended ERROR can be retried`);
    const held = await this.#deps.readState(bookId);
    if (held?.status !== 'ERROR') throw new RunRequestError('state', `book ${bookId} is ${held?.status ?? 'without a state'}; only a book that ended ERROR can be retried`);
    const run = await runs.requeue(bookId, held.version);
    if (!run) throw new RunRequestError('state', `book ${bookId} was queued again meanwhile`);
    const saved = (await runs.savedChapters(bookId)).size;
    try {
      // Fenced by the run's current epoch: the process that claims it next (epoch + 1) wins over this state.
      const state = await tracker.updateProgress(
        bookId,
        {
          status: 'GENERATING',
          generationStep: run.outline ? 'CHAPTERS' : 'OUTLINE',
          totalChapters: run.chapters,
          totalSections: run.sectionsPerChapter,
          currentChapter: saved,
          currentSection: saved > 0 ? run.sectionsPerChapter : 0,
          message: `Queued for retry: ${saved} of ${run.chapters} chapters saved`,
        },
        { fence: run.epoch, writer: writerOf(run) },
      );
      return state;
    } catch (error) {
      // Claimed meanwhile, or Redis down: the run is queued either way and its runner publishes.
      if (!(error instanceof FencedError) && !isInfrastructureError(error)) throw error;
      return held;
    } finally {
      this.#poke();
    }
  }

  /** How each of `bookIds` stands in the queue; books without a run (outside workers') are absent. */
  runStates(bookIds: readonly string[]): Promise<Map<string, RunState>> {
    return this.#deps.runs.states(bookIds);
  }

  /** Resolves when the book's local run ends (for tests and the demo); undefined if not running here. */
  settled(bookId: string): Promise<PipelineResult> | undefined {
    return this.#active.get(bookId)?.settled;
  }

  /** Stops taking runs and hands every running one back to the queue, where another process resumes it. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const timer of this.#timers) clearInterval(timer);
    this.#shutdown.abort();
    const active = [...this.#active.values()];
    for (const entry of active) entry.controller.abort(SHUTDOWN);
    await Promise.allSettled([...active.map((entry) => entry.settled), this.#filling]);
  }

  #hasRoom(): boolean {
    return !this.#stopping && this.#active.size < this.#deps.maxGenerations;
  }

  /** Claims runs while this process has room; polled, and poked when a book is started or a run ends. */
  #poke(): void {
    if (this.#stopping) return;
    if (this.#filling) {
      this.#fillAgain = true;
      return;
    }
    this.#filling = this.#fill().finally(() => {
      this.#filling = null;
      if (this.#fillAgain) {
        this.#fillAgain = false;
        this.#poke();
      }
    });
  }

  async #fill(): Promise<void> {
    try {
      while (this.#hasRoom()) {
        const run = await this.#deps.runs.claimNext(this.#claimant, [...this.#active.keys()]);
        if (!run || this.#stopping) {
          if (run) await this.#deps.runs.release(run.bookId, run.epoch);
          break;
        }
        this.#launch(run, false);
      }
      this.stats.queued = await this.#deps.runs.countQueued();
      this.#pollFailing = false;
    } catch (error) {
      // Once per outage at warn: this runs every poll.
      this.#deps.log[this.#pollFailing ? 'debug' : 'warn']({ err: rootMessage(error) }, 'looking for queued books failed; retrying');
      this.#pollFailing = true;
    }
  }

  /** Runs a claimed run here; a local run of an older epoch of the book is stopped first. */
  #launch(run: Run, isNew: boolean): { announced: Promise<void>; settled: Promise<PipelineResult> } {
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
        this.#poke();
      });
    this.#active.set(run.bookId, entry);
    return { announced, settled: entry.settled };
  }

  async #execute(run: Run, entry: Active, isNew: boolean, announce: () => void): Promise<PipelineResult> {
    const { runs, log } = this.#deps;
    const { signal } = entry.controller;
    const { bookId, epoch } = run;
    const writer = writerOf(run);
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
      this.stats.resumed++;
      log.info({ bookId, epoch, savedChapters: saved.size }, 'resuming an interrupted book');
    }
    const spec: BookSpec = { bookId, title: run.title, chapters: run.chapters, sectionsPerChapter: run.sectionsPerChapter };
    const { finished } = await startPipeline(
      { spec, epoch, outline: run.outline, saved, resumed, retried: run.baseVersion > 0, held },
      {
        ...this.#deps,
        signal,
        writer,
        onRetry: () => this.stats.retries++,
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
    const publisher = new ProgressPublisher(tracker, run.bookId, log, { signal, fence: run.epoch, writer: writerOf(run) });
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
      await tracker.updateProgress(run.bookId, { message: QUEUED_MESSAGE }, { fence: run.epoch, writer: writerOf(run) });
    } catch (error) {
      // Nothing lost: the run resumes when its lease runs out, or the state shows once it is claimed.
      log.warn({ bookId: run.bookId, err: rootMessage(error) }, 'handing a run back at shutdown failed');
    }
  }

  /** Extends this process's leases; a run it no longer holds (cancelled, or taken over after a stall) is stopped. */
  async #renew(): Promise<void> {
    if (this.#active.size === 0) return;
    const sentAfter = this.#claimSeq;
    let held: Map<string, number>;
    try {
      held = await this.#deps.runs.renew(this.#claimant, [...this.#active.keys()]);
    } catch (error) {
      // Its writes stay fenced; if the lease runs out meanwhile, the next renewal tells.
      FaultLog.of(this.#deps.log).report('run_lease_renewal', 'renewing run leases failed; retrying', { err: rootMessage(error) });
      return;
    }
    for (const [bookId, entry] of this.#active) {
      if (entry.seq > sentAfter || entry.ending || held.get(bookId) === entry.epoch) continue;
      this.#deps.log.warn({ bookId, epoch: entry.epoch }, 'lost the lease of a run; stopping it');
      entry.controller.abort(SUPERSEDED);
    }
  }

  /** A cancel or retry of a book without a run: unknown (404), or published by an outside worker (409). */
  async #refusal(bookId: string, rule: string): Promise<RunRequestError> {
    const { runs } = this.#deps;
    const found = await runs.find(bookId);
    if (found) {
      const status = found.state === 'done' ? ((await this.#deps.readState(bookId).catch(() => null))?.status ?? 'done') : found.state;
      return new RunRequestError('state', `book ${bookId} is ${status}; ${rule}`);
    }
    if (await runs.bookExists(bookId)) return new RunRequestError('state', `book ${bookId} is not generated by this service; ${rule}`);
    return new RunRequestError('unknown', `no book ${bookId}`);
  }
}

/** Whose book a run writes: every state it commits is its tenant's (a first state too), whoever wrote before. */
function writerOf(run: Run): Writer {
  return { tenant: run.tenant, anyTenant: true };
}

/** `promise`'s value, or undefined when it takes longer than `ms` (it goes on; a later rejection is dropped). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  promise.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
