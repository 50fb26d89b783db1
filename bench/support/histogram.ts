/** Latencies in whole milliseconds, one bucket per millisecond up to a minute; merged across processes. */
export class Histogram {
  static readonly MAX_MS = 60_000;
  readonly #buckets = new Uint32Array(Histogram.MAX_MS + 1);
  #count = 0;
  #max = 0;

  get count(): number {
    return this.#count;
  }

  get max(): number {
    return this.#max;
  }

  record(ms: number): void {
    const value = Math.max(0, Math.round(ms));
    const bucket = Math.min(value, Histogram.MAX_MS);
    this.#buckets[bucket] = (this.#buckets[bucket] ?? 0) + 1;
    this.#count++;
    if (value > this.#max) this.#max = value;
  }

  /** The smallest value with at least `p` percent of the samples at or below it; 0 when empty. */
  percentile(p: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.#count));
    let seen = 0;
    for (let ms = 0; ms < this.#buckets.length; ms++) {
      seen += this.#buckets[ms] ?? 0;
      if (seen >= rank) return ms;
    }
    return Histogram.MAX_MS;
  }

  summary(): LatencySummary {
    return { count: this.#count, p50: this.percentile(50), p99: this.percentile(99), max: this.#max };
  }

  /** Non-empty buckets as [ms, count] pairs, for sending to another process. */
  toSparse(): SparseHistogram {
    const buckets: Array<[number, number]> = [];
    this.#buckets.forEach((n, ms) => {
      if (n > 0) buckets.push([ms, n]);
    });
    return { buckets, max: this.#max };
  }

  merge(other: SparseHistogram): void {
    for (const [ms, n] of other.buckets) {
      this.#buckets[ms] = (this.#buckets[ms] ?? 0) + n;
      this.#count += n;
    }
    if (other.max > this.#max) this.#max = other.max;
  }

  reset(): void {
    this.#buckets.fill(0);
    this.#count = 0;
    this.#max = 0;
  }
}

export interface SparseHistogram {
  buckets: Array<[number, number]>;
  max: number;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}
