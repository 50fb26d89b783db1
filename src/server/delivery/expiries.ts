/** How often due expiries are looked for: a stream outlives its token by less than this. */
const TICK_MS = 250;

/**
 * Ends connections when their tokens expire, with one timer for all of them (not one per
 * connection). Expiries are kept by the second they fall in, so a tick looks only at the
 * seconds that have passed since the last one.
 */
export class Expiries {
  readonly #bySecond = new Map<number, Set<() => void>>();
  readonly #timer: NodeJS.Timeout;
  /** The last second whose expiries have run. */
  #done = Math.floor(Date.now() / 1000) - 1;

  constructor() {
    this.#timer = setInterval(() => this.#run(Date.now()), TICK_MS);
    this.#timer.unref();
  }

  /** Calls `expire` once `at` (ms since the epoch) has passed; the result cancels it. */
  add(at: number, expire: () => void): () => void {
    // A token's exp is a whole second, so it expires as that second begins.
    const second = Math.max(Math.ceil(at / 1000), this.#done + 1);
    let due = this.#bySecond.get(second);
    if (due === undefined) this.#bySecond.set(second, (due = new Set()));
    due.add(expire);
    const bucket = due;
    return () => {
      bucket.delete(expire);
      if (bucket.size === 0 && this.#bySecond.get(second) === bucket) this.#bySecond.delete(second);
    };
  }

  get size(): number {
    let total = 0;
    for (const due of this.#bySecond.values()) total += due.size;
    return total;
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #run(now: number): void {
    // A second's expiries run once its start has passed (exp means "not valid from then on").
    const last = Math.floor(now / 1000);
    for (let second = this.#done + 1; second <= last; second++) {
      const due = this.#bySecond.get(second);
      if (due === undefined) continue;
      this.#bySecond.delete(second);
      for (const expire of due) expire();
    }
    this.#done = last;
  }
}
