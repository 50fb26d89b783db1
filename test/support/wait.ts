/** Rejects with a message naming what was awaited when `promise` takes longer than `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Re-checks `condition` every few milliseconds until it holds; for state that has no event
 * to await (a counter in another process, a key expiring). Bounded by `ms`.
 */
export async function until(condition: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function elapse(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Lets time that the code under test measures pass: a lease or TTL running out, part of a
 * deadline spent. The clock is the event here; anything else has an event to await instead.
 */
export function waitOut(ms: number): Promise<void> {
  return elapse(ms);
}

/** The rhythm of a loop the test drives itself (a publisher, a poller, a sampler): it waits for nothing. */
export function pace(ms: number): Promise<void> {
  return elapse(ms);
}

/** A window in which the test checks that something does not happen (a loop, a retry): an absence has no event. */
export function watchForAbsence(ms: number): Promise<void> {
  return elapse(ms);
}
