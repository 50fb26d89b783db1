import { describe, expect, it } from 'vitest';
import { jitteredBackoff } from '../src/backoff.js';
import { RunAgain } from '../src/run-again.js';
import { within } from '../src/within.js';

describe('RunAgain', () => {
  it('runs one at a time, and once more for every burst of requests that came meanwhile', async () => {
    const gates: Array<() => void> = [];
    const order: string[] = [];
    const runs = new RunAgain(
      () => {
        order.push('start');
        return new Promise<void>((resolve) => gates.push(resolve));
      },
      { after: () => order.push('after') },
    );
    runs.request();
    runs.request();
    runs.request();
    expect(gates).toHaveLength(1);
    const first = runs.running;
    gates[0]?.();
    await first;
    await Promise.resolve();
    expect(gates).toHaveLength(2);
    const second = runs.running;
    gates[1]?.();
    await second;
    expect(runs.running).toBeNull();
    expect(order).toEqual(['start', 'after', 'start', 'after']);
  });

  it('drops requests while skip says so', () => {
    let ran = 0;
    const runs = new RunAgain(async () => void ran++, { skip: () => true });
    runs.request();
    expect(ran).toBe(0);
    expect(runs.running).toBeNull();
  });
});

describe('within', () => {
  it("gives the promise's value in time, and undefined once it is late", async () => {
    expect(await within(Promise.resolve(7), 1_000)).toBe(7);
    expect(await within(new Promise<number>(() => {}), 10)).toBeUndefined();
  });
});

describe('jitteredBackoff', () => {
  it('waits between half and all of the capped exponential ceiling', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(15_000, 500 * 2 ** attempt);
      const wait = jitteredBackoff(attempt, 500, 15_000);
      expect(wait).toBeGreaterThanOrEqual(ceiling / 2);
      expect(wait).toBeLessThanOrEqual(ceiling);
    }
  });
});
