import assert from 'node:assert/strict';
import { MAX_JSON_DEPTH, EnvelopeError, jsonDepth, parseReview } from '../../src/webhook/review.js';
import { loadReview } from './fixtures.js';

/** The straightforward character-by-character scan: the reference jsonDepth must agree with. */
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

describe('AdmissionReview envelope: not JSON anywhere', () => {
  it('refuses a syntax error in any member, including ones the decision never reads', () => {
    const text = JSON.stringify(loadReview('review-set-image'));
    const broken = [
      text.replace(/"status":\{/, '"status":{this is not [JSON] at all!!,'),
      text.replace(/"managedFields":\[/, '"managedFields":[x'),
      text.replace(/"readyReplicas":(\d+)/, '"readyReplicas":$1x'),
    ];
    for (const t of broken) {
      assert.notEqual(t, text);
      assert.throws(() => parseReview(t), (e: unknown) => e instanceof EnvelopeError && e.httpStatus === 400 && /body is not JSON/.test(e.message));
    }
  });
});

describe('AdmissionReview envelope: what a message may say', () => {
  it('never quotes the body back when it is not JSON (it may carry secrets; the message is logged and answered)', () => {
    const text = JSON.stringify(loadReview('review-set-image')).replace('"image":', '"env":[{"name":"DB_PASSWORD","value":hunter2-SuperSecret}],"image":');
    const secretish = ['hunter2', 'SuperSecret', 'DB_PASSWORD'];
    for (const body of [text, 'token=eyJhbGciOiJIUzI1NiJ9.c2VjcmV0', `{"a":"${'x'.repeat(50)}`, '{"uid": "u" "x": 1}']) {
      try {
        parseReview(body);
        assert.fail('parsed');
      } catch (e) {
        assert.ok(e instanceof EnvelopeError, String(e));
        assert.match(e.message, /^body is not JSON \((Unexpected token '.'|Unterminated string in JSON at position \d+|Expected ',' or '}' after property value in JSON at position \d+)\); expected an AdmissionReview/);
        for (const s of [...secretish, 'eyJhb', 'xxxxxxxxxx']) assert.ok(!e.message.includes(s), `${s} in: ${e.message}`);
      }
    }
  });

  it('reads a body that starts with a UTF-8 byte order mark', () => {
    const text = `\ufeff${JSON.stringify(loadReview('review-set-image'))}`;
    assert.equal(parseReview(Buffer.from(text, 'utf8')).operation, 'UPDATE');
  });

  it('refuses a dryRun that is not a boolean, without quoting it', () => {
    const r = loadReview('review-set-image') as unknown as { request: Record<string, unknown> };
    r.request.dryRun = 'true';
    assert.throws(() => parseReview(JSON.stringify(r)), (e: unknown) => e instanceof EnvelopeError && e.message === 'AdmissionReview request.dryRun is a string; expected true or false');
  });
});
