/**
 * JSON Merge Patch (RFC 7396), the server's half: the patch that turns one JSON value into
 * another. A merge patch cannot set a member to null (null deletes), nor carry an object with
 * null members where the base has no object, so such changes have no patch: null, send the
 * value whole. The client's half (applying a patch) is web/merge-patch.ts.
 */
export function mergePatchBetween(base: unknown, target: unknown): Record<string, unknown> | null {
  if (!isObject(base) || !isObject(target)) return null;
  return diffObjects(base, target);
}

type JsonObject = Record<string, unknown>;

function diffObjects(base: JsonObject, target: JsonObject): JsonObject | null {
  // A null prototype: a member named __proto__ is data here, as JSON.parse made it.
  const patch = Object.create(null) as JsonObject;
  for (const key in base) if (!Object.hasOwn(target, key)) patch[key] = null;
  for (const key in target) {
    const value = target[key];
    const had = Object.hasOwn(base, key);
    const before = had ? base[key] : undefined;
    if (had && jsonEqual(before, value)) continue;
    if (value === null) return null;
    if (isObject(value) && isObject(before)) {
      const inner = diffObjects(before, value);
      if (inner === null) return null;
      patch[key] = inner;
    } else {
      // Applied to a non-object, an object patch loses its null members: not expressible.
      if (hasNullMember(value)) return null;
      patch[key] = value;
    }
  }
  return patch;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function hasNullMember(value: unknown): boolean {
  if (!isObject(value)) return false;
  for (const key in value) {
    const member = value[key];
    if (member === null || hasNullMember(member)) return true;
  }
  return false;
}

/** Equality of two parsed JSON values (member order aside). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const x = a as JsonObject;
  const y = b as JsonObject;
  let count = 0;
  for (const key in x) {
    if (!Object.hasOwn(y, key) || !jsonEqual(x[key], y[key])) return false;
    count++;
  }
  for (const _ in y) count--;
  return count === 0;
}
