/**
 * Runs a task one at a time: asked while it runs, it runs once more when it ends, however often
 * it was asked meanwhile. A task's failure is its own to handle (it is not awaited by anyone).
 */
export class RunAgain {
  readonly #task: () => Promise<void>;
  readonly #options: RunAgainOptions;
  #running: Promise<void> | null = null;
  #again = false;

  constructor(task: () => Promise<void>, options: RunAgainOptions = {}) {
    this.#task = task;
    this.#options = options;
  }

  /** The run under way, if any. */
  get running(): Promise<void> | null {
    return this.#running;
  }

  /** Runs the task now, or once more after the run under way. */
  request(): void {
    if (this.#options.skip?.()) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#task().finally(() => {
      this.#options.after?.();
      this.#running = null;
      if (this.#again) {
        this.#again = false;
        this.request();
      }
    });
  }
}

export interface RunAgainOptions {
  /** Asked before each run: true drops the request (closed, stopping). */
  skip?: () => boolean;
  /** Called after each run, before the next one starts. */
  after?: () => void;
}
