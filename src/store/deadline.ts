import { beforeDeadline } from '../request-deadline.js';
import { isDatabaseUnavailable } from './failures.js';

/** A database call that got no answer within the deadline: an outage, retried like one. */
export class DatabaseTimeoutError extends Error {
  override readonly name = 'DatabaseTimeoutError';
  readonly code = 'DATABASE_TIMEOUT';
}

/**
 * The client-side bound of every database call, from asking for a connection to the last row:
 * Postgres's own `statement_timeout` cannot help when the network drops its answer (or the
 * cancel), nor while a call waits for a free connection. Also remembers whether the database
 * answered the last call, so a write that may be queued need not wait for a database that is
 * known not to answer.
 */
export class DatabaseDeadline {
  readonly timeoutMs: number;
  readonly #onMiss: () => void;
  #answering = true;

  /** `onMiss` is told of each call that got no answer in time (SocketWatchdog.missed). */
  constructor(timeoutMs: number, onMiss: () => void = () => {}) {
    this.timeoutMs = timeoutMs;
    this.#onMiss = onMiss;
  }

  /** False from a call that failed because the database could not be reached until one succeeds. */
  get answering(): boolean {
    return this.#answering;
  }

  /**
   * `call`'s result, or DatabaseTimeoutError after timeoutMs. The call itself goes on (its
   * connection is closed by the watchdog if it never answers); its outcome is then ignored.
   */
  async run<T>(what: string, call: PromiseLike<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.#onMiss();
        reject(new DatabaseTimeoutError(`the database did not answer ${what} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
    });
    const answer = Promise.resolve(call);
    answer.catch(() => {}); // a call that fails after its deadline is no longer anyone's concern
    try {
      // Inside a request, what is left of its one deadline bounds the call too (without blaming the connection).
      const result = await beforeDeadline(
        Promise.race([answer, expired]),
        () => new DatabaseTimeoutError(`the database did not answer ${what} before the request's deadline (BACKEND_TIMEOUT_MS for the whole request)`),
      );
      this.#answering = true;
      return result;
    } catch (error) {
      if (isDatabaseUnavailable(error)) this.#answering = false;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
}
