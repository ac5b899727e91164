import assert from 'node:assert/strict';
import { MAX_JSON_DEPTH, EnvelopeError, parseReview, scanReview } from '../../src/webhook/review.js';
import { loadReview } from './fixtures.js';

const jsonDepth = (text: string) => scanReview(text).depth;

/** The straightforward character-by-character scan: the reference depth must agree with. */
function referenceDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') max = Math.max(max, ++depth);
    else if (c === '}' || c === ']') depth--;
  }
  return max;
}

describe('AdmissionReview envelope: JSON depth', () => {
  const cases: Array<[string, number]> = [
    ['', 0],
    ['1', 0],
    ['{}', 1],
    ['[[[]]]', 3],
    ['{"a":[{"b":{}}]}', 4],
    ['{"a":"[[[{{{"}', 1],
    ['{"a":"x\\"[[["}', 1], // escaped quote inside a string
    ['{"a":"x\\\\"}', 1], // escaped backslash, then the real closing quote
    ['{"a":"x\\\\\\"[[["}', 1], // three backslashes: the quote is escaped
    ['{"a":"x\\\\\\\\"}', 1], // four: it is not
    ['{"a":"\\\\"},[[["\\""]]]', 3],
    ['{"a":"unterminated [[[', 1],
    ['[[["x\\', 3],
    ['{"é":"ü[","b":[{}]}', 3],
  ];
  for (const [text, depth] of cases) {
    it(`${JSON.stringify(text)} is ${depth} deep`, () => {
      assert.equal(jsonDepth(text), depth);
      assert.equal(referenceDepth(text), depth);
    });
  }

  it('agrees with the character-by-character scan on random texts of quotes, backslashes and brackets', () => {
    const alphabet = ['"', '\\', '{', '}', '[', ']', 'a', ',', ':', '\\"', '\\\\'];
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let n = 0; n < 5000; n++) {
      let text = '';
      const len = Math.floor(rnd() * 40);
      for (let i = 0; i < len; i++) text += alphabet[Math.floor(rnd() * alphabet.length)];
      assert.equal(jsonDepth(text), referenceDepth(text), JSON.stringify(text));
    }
  });

  it('measures a real AdmissionReview like the reference scan', () => {
    const text = JSON.stringify(loadReview('review-set-image'));
    assert.equal(jsonDepth(text), referenceDepth(text));
    assert.ok(jsonDepth(text) > 5);
  });

  it('refuses a body nested deeper than the limit, naming the depth', () => {
    const text = `${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`;
    assert.throws(() => parseReview(text), (e: unknown) => e instanceof EnvelopeError && e.httpStatus === 400 && e.message.includes(`nested ${MAX_JSON_DEPTH + 1} levels deep`));
  });
});

describe('AdmissionReview envelope: members nothing reads', () => {
  /**
   * What parseReview must return: the full parse, less status and metadata.managedFields of both
   * objects when they are objects or arrays (a scalar there is kept: cheap, and nothing reads it).
   */
  const isContainer = (v: unknown) => v !== null && typeof v === 'object';
  function expected(text: string): unknown {
    const q = (JSON.parse(text) as { request: Record<string, unknown> }).request;
    for (const k of ['object', 'oldObject']) {
      const o = q[k] as Record<string, unknown> | null | undefined;
      if (o && typeof o === 'object' && !Array.isArray(o)) {
        if (isContainer(o.status)) delete o.status;
        const m = o.metadata as Record<string, unknown> | undefined;
        if (m && typeof m === 'object' && !Array.isArray(m) && isContainer(m.managedFields)) delete m.managedFields;
      }
    }
    return q;
  }
  const parsed = (text: string) => {
    const { kind: _k, userInfo: _u, ...rest } = parseReview(text) as unknown as Record<string, unknown>;
    const { kind: _k2, userInfo: _u2, ...want } = expected(text) as Record<string, unknown>;
    return { got: rest, want };
  };

  it('leaves out status and managedFields of object and oldObject, and keeps everything else', () => {
    const review = loadReview('review-set-image');
    const text = JSON.stringify(review);
    assert.ok(review.request.object.metadata!.managedFields!.length > 0 && review.request.oldObject!.status, 'the fixture has both');
    const q = parseReview(text);
    const obj = q.object as Record<string, Record<string, unknown>>;
    assert.equal(obj.status, undefined);
    assert.equal(obj.metadata!.managedFields, undefined);
    assert.equal((q.oldObject as Record<string, unknown>).status, undefined);
    const { got, want } = parsed(text);
    assert.deepEqual(got, want);
    assert.deepEqual(obj.spec, review.request.object.spec);
    assert.deepEqual(obj.metadata!.annotations, review.request.object.metadata!.annotations);
  });

  it('does the same on pretty-printed JSON, and with the members first, in the middle or alone', () => {
    const review = loadReview('review-set-image');
    const o = review.request.object as unknown as Record<string, unknown>;
    const { status, ...rest } = o;
    review.request.object = { status, ...rest } as never; // status first
    const m = review.request.oldObject!.metadata as Record<string, unknown>;
    const { managedFields, ...mrest } = m;
    review.request.oldObject!.metadata = { name: mrest.name, managedFields, ...mrest } as never; // in the middle
    for (const text of [JSON.stringify(review), JSON.stringify(review, null, 2), JSON.stringify(review, null, '\t')]) {
      const { got, want } = parsed(text);
      assert.deepEqual(got, want);
    }
    const alone = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', operation: 'UPDATE', kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, object: { status: { replicas: 1 } }, oldObject: { metadata: { managedFields: [] } } } });
    const q = parseReview(alone);
    assert.deepEqual(q.object, {});
    assert.deepEqual(q.oldObject, { metadata: {} });
  });

  it('keeps members of the same names anywhere else, and strings that look like them', () => {
    const text = JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      status: { keep: 1 },
      request: {
        uid: 'u',
        name: 'object',
        operation: 'UPDATE',
        kind: { group: 'apps', version: 'v1', kind: 'Deployment' },
        status: { keep: 2 },
        options: { object: { status: 'keep', metadata: { managedFields: ['keep'] } } },
        object: {
          kind: 'status',
          metadata: { name: 'managedFields', annotations: { status: 'keep', managedFields: 'keep' }, labels: { 'x"status': 'y' } },
          spec: { status: 'keep', template: { metadata: { managedFields: 'keep' } } },
          items: [{ status: 'keep' }],
        },
        oldObject: null,
      },
    });
    const { got, want } = parsed(text);
    assert.deepEqual(got, want);
    assert.deepEqual((parseReview(text) as unknown as Record<string, unknown>).status, { keep: 2 });
    assert.deepEqual(((parseReview(text).options as Record<string, Record<string, unknown>>).object), { status: 'keep', metadata: { managedFields: ['keep'] } });
  });

  it('agrees with the full parse on random AdmissionReviews made of the keys it looks for', () => {
    const keys = ['request', 'object', 'oldObject', 'metadata', 'managedFields', 'status', 'spec', 'a'];
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const value = (d: number): unknown => {
      const r = rnd();
      if (d > 5 || r < 0.3) return [null, 1, 'status', 'managedFields', 'a"b\\', true][Math.floor(rnd() * 6)];
      if (r < 0.45) return Array.from({ length: Math.floor(rnd() * 3) }, () => value(d + 1));
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(rnd() * 4); i > 0; i--) o[keys[Math.floor(rnd() * keys.length)]!] = value(d + 1);
      return o;
    };
    let stripped = 0;
    for (let n = 0; n < 3000; n++) {
      const request = { uid: 'u', operation: 'UPDATE', kind: { kind: 'Deployment' }, object: value(2), oldObject: value(2), ...(value(1) as object) };
      Object.assign(request, { uid: 'u', operation: 'UPDATE', kind: { kind: 'Deployment' } });
      const text = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request }, null, rnd() < 0.5 ? 1 : undefined);
      const { got, want } = parsed(text);
      assert.deepEqual(got, want, text);
      if (JSON.stringify(want) !== JSON.stringify((JSON.parse(text) as { request: object }).request)) stripped++;
    }
    assert.ok(stripped > 300, `only ${stripped} of the random reviews had a member to leave out`);
  });

  it('reports a syntax error at its place in the body that was sent', () => {
    const text = JSON.stringify(loadReview('review-set-image')).replace('"replicas":', '"replicas"');
    let fromJson = '';
    try {
      JSON.parse(text);
    } catch (e) {
      fromJson = (e as Error).message;
    }
    assert.throws(() => parseReview(text), (e: unknown) => e instanceof EnvelopeError && e.httpStatus === 400 && e.message.includes(fromJson));
  });
});
