import assert from 'node:assert/strict';
import type { V1PodTemplateSpec } from '@kubernetes/client-node';
import { canonicalJson, templateHash } from '../../src/config/template-hash.js';

const template = (): V1PodTemplateSpec => ({
  metadata: { labels: { app: 'review', version: 'stable' } },
  spec: { containers: [{ name: 'review', image: 'review:1.7.0', env: [{ name: 'A', value: '1' }] }] },
});

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
});
