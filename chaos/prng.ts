/**
 * A seeded pseudo-random generator (mulberry32): the same seed draws the same numbers, so a
 * campaign's schedule of faults and load replays from its seed alone.
 */
export class Prng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A new seed from the clock, for a run that was given none. */
  static freshSeed(): number {
    return (Date.now() ^ Math.floor(Math.random() * 0x1_0000_0000)) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A generator of its own, so that one stream of draws (the load) cannot shift another (the faults). */
  fork(): Prng {
    return new Prng(Math.floor(this.next() * 0x1_0000_0000));
  }
}
