import assert from 'node:assert/strict';
import { describeAnalysis, parseAnalysis } from '../../src/config/analysis.js';
import { parseDuration } from '../../src/config/duration.js';

function errorsOf(text: string): string[] {
  const r = parseAnalysis(text);
  assert.equal(r.ok, false, `expected ${JSON.stringify(text)} to be refused`);
  return r.ok ? [] : r.errors;
}

describe('analysis annotation', () => {
  it("refuses the canary article's maxWeight 25 with stepWeight 50 in words a person understands", () => {
    assert.deepEqual(errorsOf('maxWeight: 25\nstepWeight: 50'), [
      'analysis.stepWeight 50 is larger than analysis.maxWeight 25: the first step would already send more than the maximum canary weight. Set stepWeight to at most 25, or raise maxWeight',
    ]);
  });

  it("accepts a pasted Flagger analysis block (the article's, as YAML)", () => {
    const r = parseAnalysis(`
interval: 1m
threshold: 5
maxWeight: 50
stepWeight: 10
metrics:
- name: request-success-rate
  thresholdRange:
    min: 99
  interval: 1m
- name: request-duration
  thresholdRange:
    max: 500
  interval: 30s
webhooks:
  - name: load-test
    url: http://flagger-loadtester.test/
    timeout: 5s
    metadata:
      cmd: "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"
`);
    assert.ok(r.ok);
    assert.deepEqual(r.value.steps, [10, 20, 30, 40, 50]);
    assert.equal(r.value.intervalMs, 60_000);
    assert.deepEqual(r.value.metrics.map((m) => [m.name, m.min, m.max, m.intervalMs]), [
      ['request-success-rate', 99, undefined, 60_000],
      ['request-duration', undefined, 500, 30_000],
    ]);
    assert.deepEqual(r.value.webhooks[0], { name: 'load-test', type: 'rollout', url: 'http://flagger-loadtester.test/', timeoutMs: 5000, metadata: { cmd: 'hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/' } });
  });

  it('accepts JSON too', () => {
    const r = parseAnalysis('{"interval":"30s","maxWeight":50,"stepWeight":25,"threshold":2}');
    assert.ok(r.ok);
    assert.deepEqual(r.value.steps, [25, 50]);
    assert.equal(r.value.threshold, 2);
  });

  it('ends on maxWeight when stepWeight does not divide it', () => {
    const r = parseAnalysis('maxWeight: 50\nstepWeight: 20');
    assert.ok(r.ok);
    assert.deepEqual(r.value.steps, [20, 40, 50]);
  });

  it('takes stepWeights as given, and describes the plan', () => {
    const r = parseAnalysis('stepWeights: [1, 5, 25, 60]\ninterval: 2m');
    assert.ok(r.ok);
    assert.equal(r.value.maxWeight, 60);
    assert.equal(describeAnalysis(r.value), 'steps 1%, 5%, 25%, 60% every 2m; roll back after 5 failed checks');
  });

  it('fills missing fields from cluster defaults', () => {
    const r = parseAnalysis('stepWeight: 5', { interval: '10s', threshold: 2, maxWeight: 20, metrics: [] });
    assert.ok(r.ok);
    assert.deepEqual(r.value.steps, [5, 10, 15, 20]);
    assert.equal(r.value.intervalMs, 10_000);
    assert.equal(r.value.threshold, 2);
  });

  const refused: Array<[string, string]> = [
    ['interval: 5', 'analysis.interval 5 is a bare number; write a duration with a unit, such as "5s" or "5m"'],
    ['interval: 0s', 'analysis.interval "0s" must be longer than zero'],
    ['threshold: 0', 'analysis.threshold 0 is too small; at least 1 failed check must trigger the rollback'],
    ['maxWeight: 101', 'analysis.maxWeight 101 is too large; use a percentage from 1 to 100'],
    ['stepWeight: 2.5', 'analysis.stepWeight 2.5 is not a whole number; use a percentage from 1 to 100'],
    ['stepWeight: "ten"', 'analysis.stepWeight "ten" is not a number; use a whole percentage from 1 to 100'],
    ['stepWeights: [10, 5]', 'analysis.stepWeights[1] 5 is not larger than the step before it (10); weights must increase'],
    ['stepWeights: [10, 60]\nmaxWeight: 50', 'analysis.stepWeights ends at 60, above analysis.maxWeight 50; lower the last step or raise maxWeight'],
    ['stepWeight: 10\nstepWeights: [10]', 'analysis sets both stepWeight 10 and stepWeights; keep one'],
    ['iterations: 10', 'analysis has unknown field "iterations"; allowed: interval, threshold, maxWeight, stepWeight, stepWeights, metrics, webhooks'],
    ['metrics: [{name: error-budget}]', 'analysis.metrics[0] "error-budget" is not a built-in metric (request-success-rate, request-duration) and has no query'],
    ['metrics: [{name: request-duration}]', 'analysis.metrics[0] "request-duration" has no threshold; set thresholdRange.min and/or thresholdRange.max'],
    ['metrics: [{name: x, query: "up", thresholdRange: {min: 5, max: 1}}]', 'analysis.metrics[0].thresholdRange min 5 is larger than max 1; no value could pass'],
    ['metrics: [{name: x, query: "up", thresholdRange: {mni: 5}}]', 'analysis.metrics[0].thresholdRange has unknown field "mni"; allowed: min, max'],
    ['webhooks: [{name: gate, type: confirm, url: "http://x/"}]', 'analysis.webhooks[0].type "confirm" is not a webhook type; allowed: confirm-rollout, pre-rollout, rollout, confirm-traffic-increase, confirm-promotion, post-rollout, rollback, event'],
    ['webhooks: [{name: gate, url: "x"}]', 'analysis.webhooks[0].url "x" is not an http(s) URL'],
    ['webhooks: [{name: gate, url: "http://x/", metadata: {n: 1}}]', 'analysis.webhooks[0].metadata.n 1 is not a string; metadata values must be strings (quote numbers)'],
    ['[1, 2]', 'analysis must be a mapping (got [1,2])'],
    ['a: &a [*a]', 'analysis'],
  ];
  for (const [text, message] of refused) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      const errors = errorsOf(text);
      assert.ok(errors.some((e) => e.includes(message)), `got: ${errors.join(' | ')}`);
    });
  }
});

describe('durations', () => {
  for (const [text, ms] of [['30s', 30_000], ['1m', 60_000], ['1m30s', 90_000], ['500ms', 500], ['1.5h', 5_400_000]] as const) {
    it(`reads ${text}`, () => assert.deepEqual(parseDuration(text), { ms }));
  }
  for (const text of ['', '1', '1d', 'm', '-1s', '1 m']) {
    it(`refuses ${JSON.stringify(text)}`, () => assert.ok('error' in parseDuration(text)));
  }
});
