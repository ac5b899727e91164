import assert from 'node:assert/strict';
import { ANNOTATION_LIMIT, parseReleaseConfig } from '../../src/config/release-config.js';

describe('release configuration (all kube-canary.io/* annotations)', () => {
  it('has defaults for a Deployment that sets nothing', () => {
    const r = parseReleaseConfig('review', {});
    assert.ok(r.ok);
    assert.equal(r.value.service, 'review');
    assert.equal(r.value.provider, 'istio');
    assert.equal(r.value.skipAnalysis, false);
    assert.equal(r.value.progressDeadlineMs, 600_000);
    assert.deepEqual(r.value.analysis.steps, [10, 20, 30, 40, 50]);
  });

  it('reads every annotation', () => {
    const r = parseReleaseConfig('review', {
      'kube-canary.io/analysis': 'maxWeight: 50\nstepWeight: 25',
      'kube-canary.io/progress-deadline': '90s',
      'kube-canary.io/skip-analysis': 'true',
      'kube-canary.io/provider': 'istio',
      'kube-canary.io/service': 'reviews',
    });
    assert.ok(r.ok);
    assert.deepEqual([r.value.analysis.steps, r.value.progressDeadlineMs, r.value.skipAnalysis, r.value.provider, r.value.service], [[25, 50], 90_000, true, 'istio', 'reviews']);
  });

  it('reports every problem at once, each prefixed with its annotation', () => {
    const r = parseReleaseConfig('review', {
      'kube-canary.io/analysis': 'maxWeight: 25\nstepWeight: 50',
      'kube-canary.io/skip-analysis': 'yes',
      'kube-canary.io/service': 'Reviews_Svc',
    });
    assert.equal(r.ok, false);
    assert.deepEqual(
      r.ok ? [] : r.errors.map((e) => e.split(':')[0]),
      ['kube-canary.io/analysis', 'kube-canary.io/skip-analysis', 'kube-canary.io/service'],
    );
  });

  it('refuses a name a release cannot use, for the progressor: not a Service name without kube-canary.io/service, or longer than 63', () => {
    const dotted = parseReleaseConfig('api.v2', {});
    assert.deepEqual(dotted.ok ? [] : dotted.errors, [`the name "api.v2" is not a Service name (a-z, 0-9 and '-', starting with a letter), so kube-canary cannot take the Service from it: set kube-canary.io/service to the Service in front of this Deployment`]);
    // A Deployment's name may start with a digit, a Service's may not (DNS-1035): no Service could ever be created for it.
    const digit = parseReleaseConfig('9lives', {});
    assert.match(digit.ok ? '' : digit.errors.join('; '), /^the name "9lives" is not a Service name \(a-z, 0-9 and '-', starting with a letter\)/);
    assert.ok(parseReleaseConfig('lives9', {}).ok);
    const badService = parseReleaseConfig('review', { 'kube-canary.io/service': '1abc' });
    assert.deepEqual(badService.ok ? [] : badService.errors, [`kube-canary.io/service: "1abc" is not a valid Service name (lower-case letters, digits and '-', starting with a letter, at most 63)`]);
    const named = parseReleaseConfig('api.v2', { 'kube-canary.io/service': 'api' });
    assert.ok(named.ok && named.value.service === 'api');
    const long = parseReleaseConfig('a'.repeat(64), { 'kube-canary.io/service': 'api', 'kube-canary.io/skip-analysis': 'yes' });
    assert.deepEqual(long.ok ? [] : long.errors.map((e) => e.slice(0, 40)), ["the Deployment's name is 64 characters l", 'kube-canary.io/skip-analysis: "yes" is n']);
  });

  it('refuses an oversized kube-canary annotation before parsing it, naming it and the limit', () => {
    const huge = `# ${'x'.repeat(ANNOTATION_LIMIT)}\ninterval: 1m\n`;
    const r = parseReleaseConfig('review', { 'kube-canary.io/analysis': huge });
    assert.equal(r.ok, false);
    if (!r.ok) assert.deepEqual(r.errors, [`kube-canary.io/analysis is ${huge.length} characters long; at most ${ANNOTATION_LIMIT} are read (a real configuration is a few hundred)`]);
    const fine = parseReleaseConfig('review', { 'kube-canary.io/analysis': `# ${'x'.repeat(20_000)}\ninterval: 1m\n` });
    assert.equal(fine.ok, true, 'large but under the limit: parsed (and not memoised)');
  });

  it('lists ten problems, then counts the rest in words that fit the count', () => {
    const unknown = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`kube-canary.io/x${i}`, 'v']));
    const eleven = parseReleaseConfig('review', unknown(11));
    assert.equal(eleven.ok ? '' : eleven.errors.at(-1), 'and 1 more problem (fix these first)');
    const twelve = parseReleaseConfig('review', unknown(12));
    assert.equal(twelve.ok ? '' : twelve.errors.at(-1), 'and 2 more problems (fix these first)');
  });

  it('points out a label written as an annotation', () => {
    const r = parseReleaseConfig('review', { 'kube-canary.io/enabled': 'true' });
    assert.deepEqual(r.ok ? [] : r.errors, ['kube-canary.io/enabled is a label, not an annotation; set it under metadata.labels']);
  });

  it('returns the same answer for the same annotations (memoised), whatever the managed annotations say', () => {
    const a = parseReleaseConfig('review', { 'kube-canary.io/analysis': 'stepWeight: 5', 'kube-canary.io/status': '{}' });
    const b = parseReleaseConfig('review', { 'kube-canary.io/analysis': 'stepWeight: 5', 'kube-canary.io/status': '{"phase":"x"}' });
    assert.equal(a, b);
    assert.notEqual(parseReleaseConfig('other', { 'kube-canary.io/analysis': 'stepWeight: 5' }), a);
  });

  it('refuses a planned provider that is not available in this version, listing the available ones', () => {
    for (const p of ['gateway-api', 'replicas']) {
      const r = parseReleaseConfig('review', { 'kube-canary.io/provider': p });
      assert.deepEqual(r.ok ? [] : r.errors, [`kube-canary.io/provider: "${p}" is planned but not available in this version; available: istio`]);
    }
  });

  it('refuses an unknown provider, listing the available ones and the planned ones', () => {
    const r = parseReleaseConfig('review', { 'kube-canary.io/provider': 'linkerd' });
    assert.deepEqual(r.ok ? [] : r.errors, ['kube-canary.io/provider: "linkerd" is not a traffic provider; allowed: istio (gateway-api, replicas are planned, not available in this version)']);
  });

  it('bounds the progress deadline: at least 1s, at most 24h', () => {
    const long = parseReleaseConfig('review', { 'kube-canary.io/progress-deadline': '25h' });
    assert.deepEqual(long.ok ? [] : long.errors, ['kube-canary.io/progress-deadline: "25h" is longer than 24h; use a duration from 1s to 24h, e.g. "10m"']);
    const short = parseReleaseConfig('review', { 'kube-canary.io/progress-deadline': '10ms' });
    assert.deepEqual(short.ok ? [] : short.errors, ['kube-canary.io/progress-deadline: "10ms" is shorter than 1s; use a duration from 1s to 24h, e.g. "10m"']);
    const day = parseReleaseConfig('review', { 'kube-canary.io/progress-deadline': '24h' });
    assert.ok(day.ok);
    assert.equal(day.value.progressDeadlineMs, 86_400_000);
  });

  it("applies the cluster default's step plan under an annotation that sets other fields", () => {
    const defaults = { analysis: { stepWeights: [5, 10, 20], interval: '30s' } };
    const r = parseReleaseConfig('review', { 'kube-canary.io/analysis': 'threshold: 2' }, defaults);
    assert.ok(r.ok);
    assert.deepEqual([r.value.analysis.steps, r.value.analysis.intervalMs, r.value.analysis.threshold], [[5, 10, 20], 30_000, 2]);
  });
});
