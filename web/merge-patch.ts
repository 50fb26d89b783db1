/**
 * JSON Merge Patch (RFC 7396) for streams opened with `delta=merge-patch`: the first event of a
 * book is its whole state (`progress`), the next ones (`patch`) patch the previous state this
 * connection received. One PatchedStates per connection: a new connection starts whole again.
 */

/** `patch` applied to `target` (RFC 7396 section 2); neither is changed. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const result: Record<string, unknown> = {};
  if (isObject(target)) for (const key of Object.keys(target)) define(result, key, target[key]);
  for (const key of Object.keys(patch)) {
    const value = patch[key];
    if (value === null) delete result[key];
    else define(result, key, applyMergePatch(Object.hasOwn(result, key) ? result[key] : undefined, value));
  }
  return result;
}

/** The states one connection received, as sent (before any validation): the bases of its patches. */
export class PatchedStates {
  readonly #states = new Map<string, unknown>();

  /** A whole state (`progress` event); returned as is. */
  whole(state: unknown): unknown {
    const bookId = isObject(state) ? state.bookId : undefined;
    if (typeof bookId === 'string') this.#states.set(bookId, state);
    return state;
  }

  /**
   * A `patch` event's data: the book's new state, or undefined when this connection has no state
   * of it to patch (not expected: reconnect). Patches on streams of several books name theirs
   * (`bookId`, unchanged); on a one-book stream (or with `bookId` given, as WebSocket messages
   * have it) the book is the one there is.
   */
  patch(patch: unknown, bookId = this.#bookOf(patch)): unknown {
    if (bookId === undefined) return undefined;
    const base = this.#states.get(bookId);
    if (base === undefined) return undefined;
    const state = applyMergePatch(base, patch);
    this.#states.set(bookId, state);
    return state;
  }

  #bookOf(patch: unknown): string | undefined {
    const named = isObject(patch) ? patch.bookId : undefined;
    if (typeof named === 'string') return named;
    return this.#states.size === 1 ? (this.#states.keys().next().value as string) : undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Sets a member even when it is named __proto__ (JSON.parse makes that an own member too). */
function define(object: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
}
