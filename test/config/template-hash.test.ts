import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { V1PodTemplateSpec } from '@kubernetes/client-node';
import { canonicalJson, templateHash } from '../../src/config/template-hash.js';

const template = (): V1PodTemplateSpec => ({
  metadata: { labels: { app: 'review', version: 'stable' } },
  spec: { containers: [{ name: 'review', image: 'review:1.7.0', env: [{ name: 'A', value: '1' }] }] },
});

/** The definition canonicalJson implements: JSON.stringify for every key and scalar. */
function referenceCanonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(referenceCanonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  const members = Object.keys(o)
    .sort()
    .filter((k) => o[k] !== undefined && o[k] !== null)
    .map((k) => `${JSON.stringify(k)}:${referenceCanonicalJson(o[k])}`);
  return `{${members.join(',')}}`;
}

describe('template hash', () => {
  it('is sha256 of sorted-key JSON, 10 hex digits (cross-checked with Python; changing it breaks releases in flight)', () => {
    assert.equal(templateHash(template(), 'version'), 'f679256880');
  });

  it('ignores key order, the track label, pod-template-hash, restartedAt and null members', () => {
    const t = template();
    const shuffled: V1PodTemplateSpec = {
      spec: { containers: [{ env: [{ value: '1', name: 'A' }], image: 'review:1.7.0', name: 'review' }] },
      metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': 'now' }, labels: { 'pod-template-hash': 'abc', version: 'canary', app: 'review' }, creationTimestamp: null as unknown as Date },
    };
    assert.equal(templateHash(shuffled, 'version'), templateHash(t, 'version'));
  });

  it('keeps a label named __proto__ (a hand-made review) as a label, not as a prototype', () => {
    const labels = JSON.parse('{"__proto__": "x", "app": "review", "version": "stable"}') as Record<string, string>;
    const t = { ...template(), metadata: { labels } };
    assert.notEqual(templateHash(t, 'version'), templateHash(template(), 'version'));
    assert.equal(templateHash(t, 'version'), createHash('sha256').update(canonicalJson({ metadata: { labels: JSON.parse('{"__proto__": "x", "app": "review"}') }, spec: t.spec })).digest('hex').slice(0, 10));
  });

  it('changes with the image, an env value or a label', () => {
    const base = templateHash(template(), 'version');
    const a = template();
    a.spec!.containers[0]!.image = 'review:1.8.0';
    const b = template();
    b.spec!.containers[0]!.env![0]!.value = '2';
    const c = template();
    c.metadata!.labels!.team = 'x';
    for (const t of [a, b, c]) assert.notEqual(templateHash(t, 'version'), base);
  });

  it('hashes the UTF-8 bytes of the canonical JSON (non-ASCII text included)', () => {
    const t = template();
    t.metadata!.annotations = { description: 'Bewertungsdienst für Rezensionen, 評論 😀' };
    const expected = createHash('sha256').update(Buffer.from(canonicalJson({ ...t, metadata: { annotations: t.metadata!.annotations, labels: { app: 'review' } } }), 'utf8')).digest('hex').slice(0, 10);
    assert.equal(templateHash(t, 'version'), expected);
  });

  it('depends on which key is the track label', () => {
    assert.notEqual(templateHash(template(), 'track'), templateHash(template(), 'version'));
  });

  it('does not modify its input', () => {
    const t = template();
    templateHash(t, 'version');
    assert.deepEqual(t, template());
  });

  it('canonical JSON sorts keys at every depth and keeps array order', () => {
    assert.equal(canonicalJson({ b: [2, { d: 1, c: null }], a: 'x' }), '{"a":"x","b":[2,{"d":1}]}');
  });

  it('canonical JSON escapes keys and strings exactly like JSON.stringify, and writes numbers and booleans like it', () => {
    const strings = ['', 'plain', 'quote"d', 'back\\slash', 'new\nline', '\u0000\u001f\u007f', 'tab\t', 'é ü 中文', '\ud83d\ude00', 'lone \ud800', 'lone \udfff end', '</script>', '__proto__', '10', '9', 'a.b/c~d'];
    const scalars: unknown[] = [...strings, 0, -0, 1.5, -2e-7, 1e21, 123456789012345680000, Number.NaN, Number.POSITIVE_INFINITY, true, false, null, undefined];
    let seed = 7;
    const rnd = (n: number) => Math.floor(((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * n);
    const value = (depth: number): unknown => {
      const pick = rnd(depth > 3 ? 1 : 3);
      if (pick === 0) return scalars[rnd(scalars.length)];
      if (pick === 1) return Array.from({ length: rnd(4) }, () => value(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = rnd(5); i > 0; i--) Object.defineProperty(o, strings[rnd(strings.length)]!, { value: value(depth + 1), enumerable: true, configurable: true, writable: true });
      return o;
    };
    for (let n = 0; n < 3000; n++) {
      const v = value(0);
      assert.equal(canonicalJson(v), referenceCanonicalJson(v));
    }
    assert.equal(canonicalJson({ z: 'a"b', 'k\n': 1.5, n: Number.NaN, d: new Date(0), t: true }), '{"d":{},"k\\n":1.5,"n":null,"t":true,"z":"a\\"b"}');
  });

  it('canonical JSON orders keys like Array.prototype.sort for short and long key lists, in any order', () => {
    // Short lists are sorted in place (insertion sort), long ones natively: both must give the order the hash was defined with.
    const pool = ['b', 'a', 'B', 'A', '_', '10', '9', '0', 'aa', 'a\u0000', 'é', 'z', '\ud83d\ude00', '\uffff', 'key-1', 'key-10', 'key-2', 'KEY'];
    let seed = 11;
    const rnd = (n: number) => Math.floor(((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * n);
    for (const size of [2, 3, 5, 31, 32, 33, 40, 100]) {
      for (let n = 0; n < 50; n++) {
        const keys = new Set<string>();
        while (keys.size < size) keys.add(`${pool[rnd(pool.length)]}${rnd(2) === 0 ? rnd(1000) : ''}`);
        const ordered = n % 2 === 0 ? [...keys] : [...keys].sort().reverse();
        const o = Object.fromEntries(ordered.map((k, i) => [k, i]));
        assert.equal(canonicalJson(o), referenceCanonicalJson(o), `${size} keys`);
      }
    }
  });
});
