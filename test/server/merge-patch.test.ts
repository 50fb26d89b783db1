import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EncodedState } from '../../src/server/delivery/encoded-state.js';
import { jsonEqual, mergePatchBetween } from '../../src/server/delivery/merge-patch.js';
import { applyMergePatch } from '../../web/merge-patch.js';

const json = fc.jsonValue({ maxDepth: 3 });
const object = fc.dictionary(fc.string({ maxLength: 6 }), json, { maxKeys: 6 });

describe('JSON Merge Patch (RFC 7396)', () => {
  it('applies the examples of RFC 7396 appendix A', () => {
    const cases: Array<[unknown, unknown, unknown]> = [
      [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
      [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
      [{ a: 'b' }, { a: null }, {}],
      [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
      [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
      [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
      [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
      [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
      [['a', 'b'], ['c', 'd'], ['c', 'd']],
      [{ a: 'b' }, ['c'], ['c']],
      [{ a: 'foo' }, null, null],
      [{ a: 'foo' }, 'bar', 'bar'],
      [{ e: null }, { a: 1 }, { e: null, a: 1 }],
      [[1, 2], { a: 'b', c: null }, { a: 'b' }],
      [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
    ];
    for (const [target, patch, result] of cases) expect(applyMergePatch(target, patch)).toStrictEqual(result);
  });

  it('the patch between two objects, applied to the first, gives the second exactly (or there is none)', () => {
    fc.assert(
      fc.property(object, object, (base, target) => {
        const patch = mergePatchBetween(base, target);
        if (patch === null) {
          // Only a member set to null (at any depth of objects) has no merge patch.
          expect(JSON.stringify(target)).toContain('null');
          return;
        }
        expect(jsonEqual(applyMergePatch(base, JSON.parse(JSON.stringify(patch))), target)).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });

  it('treats __proto__ as a member, on both sides', () => {
    const base = JSON.parse('{"a":1,"__proto__":{"x":1}}') as unknown;
    const target = JSON.parse('{"a":1,"__proto__":{"x":2}}') as unknown;
    const patch = JSON.parse(JSON.stringify(mergePatchBetween(base, target))) as unknown;
    expect(JSON.stringify(patch)).toBe('{"__proto__":{"x":2}}');
    const applied = applyMergePatch(base, patch) as Record<string, unknown>;
    expect(Object.getPrototypeOf(applied)).toBe(Object.prototype);
    expect(jsonEqual(applied, target)).toBe(true);
  });
});

describe('EncodedState.patchFrom', () => {
  const state = (version: number, fields: Record<string, unknown>, status = 'GENERATING') =>
    new EncodedState('b1', version, status === 'COMPLETE', JSON.stringify({ bookId: 'b1', status, message: 'a long enough message to make a patch worth it', ...fields, version }), undefined);

  it('builds one patch per base version and shares it, frames included', () => {
    const v1 = state(1, { currentChapter: 1 });
    const v2 = state(2, { currentChapter: 1, message: 'x' });
    const v3 = state(3, { currentChapter: 2, message: 'x' });
    const fromV2 = v3.patchFrom(v2);
    expect(v3.patchFrom(v2)).toBe(fromV2);
    expect(fromV2?.frame).toBe(v3.patchFrom(v2)?.frame);
    expect(fromV2?.json).toBe('{"currentChapter":2,"version":3}');
    expect(fromV2?.jsonWithBookId).toBe('{"bookId":"b1","currentChapter":2,"version":3}');
    // A client that skipped version 2 gets a patch against what it has: version 1.
    const fromV1 = v3.patchFrom(v1);
    expect(fromV1).not.toBe(fromV2);
    expect(fromV1?.json).toBe('{"message":"x","currentChapter":2,"version":3}');
    expect(fromV1?.frame.plain.toString()).toBe(`event: patch\nid: 3\ndata: ${fromV1?.json}\n\n`);
    expect(fromV1?.frameWithoutId.plain.toString()).toBe(`event: patch\ndata: ${fromV1?.jsonWithBookId}\n\n`);
    expect(fromV1?.wsMessage.toString()).toBe(`{"type":"patch","bookId":"b1","data":${fromV1?.json}}`);
  });

  it('sends terminal states, members set to null and patches no smaller whole', () => {
    const v1 = state(1, { a: 1 });
    expect(state(2, { a: 2 }, 'COMPLETE').patchFrom(v1)).toBeNull();
    expect(state(2, { a: null }).patchFrom(v1)).toBeNull();
    // Every member removed or changed: the patch is longer than the state.
    const many = state(1, { k1: 1, k2: 2, k3: 3, k4: 4 });
    expect(new EncodedState('b1', 2, false, '{"bookId":"b1","status":"ERROR","version":2}', undefined).patchFrom(many)).toBeNull();
    // A removed member is a null in the patch.
    expect(state(2, {}).patchFrom(v1)?.json).toBe('{"a":null,"version":2}');
  });
});
