import { AsyncLocalStorage } from 'node:async_hooks';

interface Deadline {
  /** performance.now() ms by which the request must be answered. */
  readonly at: number;
  /** False once the request was answered: work it left behind (a timer, a retry) is no longer bound by it. */
  open: boolean;
}

/** The deadline of the request being served; absent outside requests. */
const deadlines = new AsyncLocalStorage<Deadline>();

/**
 * Runs `work` with one deadline `ms` from now, carried to every backend call it makes (across
 * awaits): BACKEND_TIMEOUT_MS then bounds the whole request, not each call inside it.
 */
export async function withDeadline<T>(ms: number, work: () => Promise<T>): Promise<T> {
  const deadline: Deadline = { at: performance.now() + ms, open: true };
  try {
    return await deadlines.run(deadline, work);
  } finally {
    deadline.open = false;
  }
}

/** The milliseconds left of the current request's deadline (at least 0), or null outside one. */
export function remainingMs(): number | null {
  const deadline = deadlines.getStore();
  return deadline === undefined || !deadline.open ? null : Math.max(0, deadline.at - performance.now());
}

/**
 * `call`'s result, or the error `late()` makes once the current request's deadline passes
 * (outside a request, `call` as it is: each call keeps its own bound).
 */
export async function beforeDeadline<T>(call: Promise<T>, late: () => Error): Promise<T> {
  const left = remainingMs();
  if (left === null) return call;
  call.catch(() => {}); // an answer after the deadline is no longer anyone's concern
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late()), left);
  });
  try {
    return await Promise.race([call, expired]);
  } finally {
    clearTimeout(timer);
  }
}
