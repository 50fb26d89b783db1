import { randomBytes } from 'node:crypto';
import type { BookProgress } from '../progress/schema.js';
import { FencedError } from '../progress/tracker.js';
import type { Claimant, RunState } from '../store/runs.js';
import { within } from '../within.js';
import type { OrchestratorDeps, OrchestratorStats } from './deps.js';
import type { BookSpec } from './generator.js';
import { LocalRuns, QUEUED_MESSAGE, runWriter } from './local-runs.js';
import type { PipelineResult } from './pipeline.js';
import { ProgressPublisher } from './publisher.js';
import { RunQueue } from './run-queue.js';
import { isInfrastructureError } from './retry.js';

export type { OrchestratorDeps, OrchestratorStats } from './deps.js';

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

/**
 * How long a cancel waits for the book's final state, then for a read of the state so far,
 * before answering without it: with the claim, both within the 3 s every request is answered in.
 */
export const CANCEL_WAIT_MS = 1_000;

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
  readonly #local: LocalRuns;
  readonly #queue: RunQueue;
  /** Aborted at shutdown: queued-state publishes stop retrying. */
  readonly #shutdown = new AbortController();

  constructor(deps: OrchestratorDeps) {
    this.#deps = deps;
    this.#claimant = { owner: deps.owner, leaseMs: deps.leaseMs };
    this.#local = new LocalRuns(deps, this.stats, () => this.#queue.poke());
    this.#queue = new RunQueue(deps, this.#claimant, this.#local, this.stats);
  }

  /** Books running in this process. */
  get running(): number {
    return this.#local.size;
  }

  /** Starts taking queued and stalled runs, and renewing the leases held. */
  begin(): void {
    this.#queue.begin();
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
    const claimant = this.#queue.hasRoom() ? this.#claimant : null;
    const tenant = request.tenant ?? null;
    const run = await this.#deps.runs.create({ id: spec.bookId, title: spec.title, owner: request.owner ?? null, tenant }, spec, claimant);
    if (claimant) {
      await this.#local.launch(run, true).announced;
      return spec;
    }
    // Fenced by epoch 0: once a process claims the run (epoch 1), this state can no longer land over its own.
    const publisher = new ProgressPublisher(this.#deps.tracker, spec.bookId, this.#deps.log, { signal: this.#shutdown.signal, fence: run.epoch, writer: runWriter(run) });
    await publisher.publish({
      status: 'PLANNING',
      generationStep: 'PLANNING',
      totalChapters: spec.chapters,
      totalSections: spec.sectionsPerChapter,
      currentChapter: 0,
      currentSection: 0,
      message: QUEUED_MESSAGE,
    });
    this.#queue.poke();
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
    const ended = await within(this.#local.launch(run, false).settled, CANCEL_WAIT_MS);
    const state = (await within(this.#deps.readState(bookId), CANCEL_WAIT_MS).catch(() => undefined)) ?? null;
    // Its own run ended it just before the cancel landed (LocalRuns keeps that state).
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
        { fence: run.epoch, writer: runWriter(run) },
      );
      return state;
    } catch (error) {
      // Claimed meanwhile, or Redis down: the run is queued either way and its runner publishes.
      if (!(error instanceof FencedError) && !isInfrastructureError(error)) throw error;
      return held;
    } finally {
      this.#queue.poke();
    }
  }

  /** How each of `bookIds` stands in the queue; books without a run (outside workers') are absent. */
  runStates(bookIds: readonly string[]): Promise<Map<string, RunState>> {
    return this.#deps.runs.states(bookIds);
  }

  /** Resolves when the book's local run ends (for tests and the demo); undefined if not running here. */
  settled(bookId: string): Promise<PipelineResult> | undefined {
    return this.#local.settled(bookId);
  }

  /** Stops taking runs and hands every running one back to the queue, where another process resumes it. */
  async stop(): Promise<void> {
    const filling = this.#queue.stop();
    this.#shutdown.abort();
    const settled = this.#local.abortAll();
    await Promise.allSettled([...settled, filling]);
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
