/**
 * Coalesces many changes into one call: at the next animation frame (or every `throttleMs`),
 * never more often, so a replay after a resume or a burst of updates is one render. While the
 * page is hidden and `pauseWhenHidden` is set, nothing is delivered; the first visible frame
 * delivers what piled up.
 */
export class FrameBatch {
  readonly #run: () => void;
  readonly #throttleMs: number | undefined;
  readonly #pauseWhenHidden: boolean;
  #pending = false;
  #scheduled = false;
  #closed = false;
  readonly #onVisible = () => {
    if (!hidden() && this.#pending) this.#schedule();
  };

  constructor(run: () => void, options: { throttleMs?: number | undefined; pauseWhenHidden?: boolean | undefined } = {}) {
    this.#run = run;
    this.#throttleMs = options.throttleMs;
    this.#pauseWhenHidden = options.pauseWhenHidden ?? false;
    if (this.#pauseWhenHidden && typeof document !== 'undefined') document.addEventListener('visibilitychange', this.#onVisible);
  }

  /** Something changed: deliver it with the next batch. */
  mark(): void {
    if (this.#closed) return;
    this.#pending = true;
    this.#schedule();
  }

  close(): void {
    this.#closed = true;
    this.#pending = false;
    if (typeof document !== 'undefined') document.removeEventListener('visibilitychange', this.#onVisible);
  }

  #schedule(): void {
    if (this.#scheduled || (this.#pauseWhenHidden && hidden())) return;
    this.#scheduled = true;
    const fire = () => {
      this.#scheduled = false;
      if (this.#closed || !this.#pending) return;
      if (this.#pauseWhenHidden && hidden()) return; // resumed by visibilitychange
      this.#pending = false;
      this.#run();
    };
    if (this.#throttleMs !== undefined) setTimeout(fire, this.#throttleMs);
    else if (typeof requestAnimationFrame === 'function' && typeof document !== 'undefined') requestAnimationFrame(fire);
    else setTimeout(fire, 16);
  }
}

function hidden(): boolean {
  return typeof document !== 'undefined' && document.visibilityState === 'hidden';
}
