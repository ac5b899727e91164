import assert from 'node:assert/strict';
import fjp from 'fast-json-patch';
import { mapPatch, pointer } from '../../src/kube/json-patch.js';

describe('JSON Patch building blocks', () => {
  it('escapes ~ and / in pointer segments (RFC 6901)', () => {
    assert.equal(pointer('metadata', 'annotations', 'kube-canary.io/status'), '/metadata/annotations/kube-canary.io~1status');
    assert.equal(pointer('a~b/c', '~1'), '/a~0b~1c/~01');
    assert.equal(pointer(), '');
  });

  const cases: Array<[string, Record<string, string> | undefined, Record<string, string> | undefined]> = [
    ['no map before', undefined, { 'kube-canary.io/revision': 'abc' }],
    ['no map before, empty after', undefined, {}],
    ['keys added, changed and removed', { keep: '1', change: 'a', 'x/y~z': 'gone' }, { keep: '1', change: 'b', 'new/key': 'n' }],
    ['all keys removed', { a: '1', b: '2' }, {}],
    ['nothing changed', { a: '1' }, { a: '1' }],
  ];
  for (const [name, before, after] of cases) {
    it(`turns the map into the new one: ${name}`, () => {
      const doc = { metadata: before === undefined ? {} : { annotations: { ...before } } };
      const ops = mapPatch(['metadata', 'annotations'], before, after);
      const out = fjp.applyPatch(structuredClone(doc), ops, true).newDocument;
      assert.deepEqual(out.metadata.annotations ?? {}, after);
      if (before && after && JSON.stringify(before) === JSON.stringify(after)) assert.deepEqual(ops, []);
    });
  }

  it('writes nothing when the map is the same object', () => {
    const m = { a: '1' };
    assert.deepEqual(mapPatch(['m'], m, m), []);
  });
});
