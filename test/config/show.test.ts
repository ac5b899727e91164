import assert from 'node:assert/strict';
import { cut, kindOf, show } from '../../src/config/show.js';

describe('config: values in messages', () => {
  it('cuts long values to 60 characters, never between the halves of an emoji (a lone surrogate shows as "�" in kubectl)', () => {
    const v = `${'x'.repeat(55)}🚀🚀🚀🚀`;
    const s = show(v);
    assert.ok(s.length <= 60, s);
    assert.ok(s.endsWith('...'));
    assert.ok(!/[\ud800-\udbff](?![\udc00-\udfff])/.test(s), `lone high surrogate in ${JSON.stringify(s)}`);
    assert.equal(Buffer.from(s, 'utf8').toString('utf8'), s, 'round-trips through UTF-8');
    assert.equal(cut('short', 10), 'short');
    assert.equal(cut('abcdefghijk', 10), 'abcdefg...');
  });

  it('names the kind of a value without quoting it', () => {
    assert.deepEqual([kindOf(null), kindOf([1]), kindOf({}), kindOf({}, 'a mapping'), kindOf(5), kindOf('s')], ['null', 'a list', 'an object', 'a mapping', 'a number', 'a string']);
  });
});
