import type { Logger } from 'pino';
import { learnEtaModel } from './eta-model.js';
import type { EtaModel } from './eta-model.js';
import type { RunHistory } from './queries.js';

export const DEFAULT_ETA_REFRESH_MS = 60_000;
/** Completed runs the model learns from: the most recent, so it follows today's speed of the AI service. */
export const DEFAULT_ETA_HISTORY_RUNS = 200;

export interface EtaRefresherOptions {
  /** Reads the history, e.g. `() => recentCompletedRuns(db, DEFAULT_ETA_HISTORY_RUNS)`. */
  load: () => Promise<readonly RunHistory[]>;
  log: Logger;
  intervalMs?: number;
}

/**
 * Holds the current ETA model and relearns it in the background, one query per interval; the
 * publish path only reads `model` (null until history exists: the linear estimate stands). A
 * failed refresh keeps the last model.
 */
export class EtaRefresher {
  #model: EtaModel | null = null;
  #timer: NodeJS.Timeout | null = null;
  readonly #options: EtaRefresherOptions;

  constructor(options: EtaRefresherOptions) {
    this.#options = options;
  }

  get model(): EtaModel | null {
    return this.#model;
  }

  /** Relearns now; resolves to the model in use afterwards. Never throws. */
  async refresh(): Promise<EtaModel | null> {
    try {
      this.#model = learnEtaModel(await this.#options.load());
    } catch (error) {
      this.#options.log.warn({ err: error instanceof Error ? error.message : String(error) }, 'ETA model refresh failed; keeping the last one');
    }
    return this.#model;
  }

  /** Refreshes at once, then every interval, until stop(). */
  start(): void {
    if (this.#timer !== null) return;
    const tick = () => {
      void this.refresh().finally(() => {
        if (this.#timer !== null) this.#timer = setTimeout(tick, this.#options.intervalMs ?? DEFAULT_ETA_REFRESH_MS).unref();
      });
    };
    this.#timer = setTimeout(tick, 0).unref();
  }

  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
