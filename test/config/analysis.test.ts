import assert from 'node:assert/strict';
import { describeAnalysis, parseAnalysis } from '../../src/config/analysis.js';
import { formatDuration, parseDuration } from '../../src/config/duration.js';

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

  it('shortens a long plan so that the warning stays whole', () => {
    const r = parseAnalysis('stepWeight: 1\nmaxWeight: 50');
    assert.ok(r.ok);
    assert.equal(describeAnalysis(r.value), 'steps 1%, 2%, ..., 50% (50 steps) every 1m; roll back after 5 failed checks');
  });

  it('says that nothing checks the steps when there are no metrics and no gating webhooks', () => {
    const r = parseAnalysis('metrics: []\nwebhooks: [{name: tell, type: event, url: "http://x/"}, {name: done, type: post-rollout, url: "http://x/"}]');
    assert.ok(r.ok);
    assert.equal(describeAnalysis(r.value), 'steps 10%, 20%, 30%, 40%, 50% every 1m; no metrics or gating webhooks check them, so every step passes');
    for (const type of ['pre-rollout', 'rollout', 'rollback', 'confirm-rollout', 'confirm-traffic-increase', 'confirm-promotion']) {
      const g = parseAnalysis(`metrics: []\nwebhooks: [{name: g, type: ${type}, url: "http://x/"}]`);
      assert.ok(g.ok);
      assert.match(describeAnalysis(g.value), /roll back after 5 failed checks$/, type);
    }
    // The same name under two types is two webhooks (Flagger accepts it too).
    assert.ok(parseAnalysis('webhooks: [{name: a, type: pre-rollout, url: "http://x/"}, {name: a, type: rollout, url: "http://x/"}]').ok);
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
    ['webhooks: [{name: gate, url: "http://x/", metadata: {n: 1}}]', 'analysis.webhooks[0].metadata.n is a number; metadata values must be strings (put quotes around it)'],
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
  it('writes durations for messages in the largest whole unit, zero as 0s', () => {
    assert.deepEqual([0, 500, 5000, 60_000, 90_000, 3_600_000].map(formatDuration), ['0s', '500ms', '5s', '1m', '90s', '1h']);
  });
});

describe('analysis: cluster defaults and the built-in ones, field by field', () => {
  const STEPS_DEFAULT = { stepWeights: [5, 10, 20], interval: '30s' };
  const ok = (text: string | undefined, defaults?: unknown) => {
    const r = parseAnalysis(text, defaults);
    assert.ok(r.ok, r.ok ? '' : r.errors.join(' | '));
    return r.value;
  };

  it("keeps the cluster default's stepWeights when the annotation sets no step field", () => {
    const a = ok('threshold: 2', STEPS_DEFAULT);
    assert.deepEqual([a.steps, a.maxWeight, a.intervalMs, a.threshold], [[5, 10, 20], 20, 30_000, 2]);
  });

  it('uses the cluster default alone when there is no annotation', () => {
    assert.deepEqual(ok(undefined, STEPS_DEFAULT).steps, [5, 10, 20]);
  });

  it("runs an annotation's stepWeight up to the cluster default's last stepWeight", () => {
    assert.deepEqual(ok('stepWeight: 5', STEPS_DEFAULT).steps, [5, 10, 15, 20]);
  });

  it("cuts the cluster default's stepWeights at an annotation's maxWeight, or extends them to it", () => {
    assert.deepEqual(ok('maxWeight: 15', STEPS_DEFAULT).steps, [5, 10, 15]);
    assert.deepEqual(ok('maxWeight: 50', STEPS_DEFAULT).steps, [5, 10, 20, 50]);
  });

  it("takes an annotation's stepWeights as written, whatever the cluster default's maxWeight", () => {
    assert.deepEqual(ok('stepWeights: [10, 60]', { maxWeight: 20 }).steps, [10, 60]);
  });

  it("caps a defaulted stepWeight at the annotation's maxWeight", () => {
    assert.deepEqual(ok('maxWeight: 5').steps, [5]);
    assert.deepEqual(ok('maxWeight: 20', { stepWeight: 25 }).steps, [20]);
    assert.deepEqual(ok('maxWeight: 30', { stepWeight: 10 }).steps, [10, 20, 30]);
  });

  it('keeps the built-in metrics and takes the cluster default webhooks when the annotation sets neither', () => {
    const a = ok('threshold: 2', { interval: '30s', webhooks: [{ name: 'load', url: 'http://load.test/' }] });
    assert.deepEqual(a.metrics.map((m) => m.name), ['request-success-rate', 'request-duration']);
    assert.deepEqual(a.webhooks.map((w) => w.name), ['load']);
    assert.deepEqual(ok('webhooks: []', { webhooks: [{ name: 'load', url: 'http://load.test/' }] }).webhooks, []);
  });

  it('says a cited maxWeight is the built-in default and how to change it', () => {
    assert.deepEqual(errorsOf('stepWeight: 60'), [
      'analysis.stepWeight 60 is larger than maxWeight 50, the built-in default, as the annotation sets no maxWeight: the first step would already send more than the maximum canary weight. Set stepWeight to at most 50, or set maxWeight (up to 100) in the annotation',
    ]);
  });

  it("says a cited maxWeight comes from the cluster default, and from which field", () => {
    const r1 = parseAnalysis('stepWeight: 30', { maxWeight: 20 });
    assert.deepEqual(r1.ok ? [] : r1.errors, [
      'analysis.stepWeight 30 is larger than maxWeight 20, the cluster default (--default-analysis), as the annotation sets no maxWeight: the first step would already send more than the maximum canary weight. Set stepWeight to at most 20, or set maxWeight (up to 100) in the annotation',
    ]);
    const r2 = parseAnalysis('stepWeight: 30', STEPS_DEFAULT);
    assert.match(r2.ok ? '' : r2.errors.join(), /maxWeight 20, the last of the cluster default's stepWeights \(--default-analysis\)/);
  });
});

describe('analysis: numbers, YAML errors and bounds', () => {
  const refused: Array<[string, string]> = [
    ['threshold: .inf', 'analysis.threshold Infinity is not a finite number; use a whole number of failed checks, at least 1'],
    ['metrics: [{name: x, query: up, thresholdRange: {min: .inf}}]', 'analysis.metrics[0].thresholdRange.min Infinity is not a finite number'],
    ['{"metrics":[{"name":"x","query":"up","thresholdRange":{"max":1e400}}]}', 'analysis.metrics[0].thresholdRange.max Infinity is not a finite number'],
    ['maxWeight: -.inf', 'analysis.maxWeight -Infinity is not a finite number; use a whole percentage from 1 to 100'],
    ['interval: 1m\nthreshold: 2\ninterval: 2m', 'analysis is not valid YAML or JSON: line 3, column 1: key "interval" appears twice; a key may appear only once'],
    ['metrics:\n- name: x\n  name: y', 'analysis is not valid YAML or JSON: line 3, column 3: key "name" appears twice'],
    ['interval: [1m', 'analysis is not valid YAML or JSON: line 1, column 14:'],
    ['['.repeat(1000) + ']'.repeat(1000), 'analysis is nested too deep'],
    ['metrics: ' + '['.repeat(40) + ']'.repeat(40), 'analysis is nested too deep'],
    ['interval: 1ms', 'analysis.interval "1ms" is shorter than 1s; use a duration from 1s to 24h'],
    ['webhooks: [{url: "http://x/"}]', 'analysis.webhooks[0].name is missing'],
    ['threshold: 99999999999999999999', 'analysis.threshold 100000000000000000000 is too large; use a whole number of failed checks, at least 1'],
    ['metrics: [{name: x, query: "", thresholdRange: {min: 1}}]', 'analysis.metrics[0].query is empty; give a PromQL query, or leave query out for the built-in'],
    ['webhooks: [{name: a, url: "http://x/"}, {name: a, url: "http://y/"}]', 'analysis.webhooks has the rollout webhook "a" twice; give each webhook of a type its own name'],
    ['iterations: 10', 'analysis has unknown field "iterations"; allowed: interval, threshold, maxWeight, stepWeight, stepWeights, metrics, webhooks ("iterations" is Flagger\'s: A/B testing, not supported: kube-canary shifts traffic by weight (stepWeight or stepWeights, maxWeight))'],
    ['webhooks: [{name: a, url: "http://x/", retries: 3}]', 'analysis.webhooks[0] has unknown field "retries"; allowed: name, type, url, timeout, metadata, muteAlert ("retries" is Flagger\'s'],
    // templateRef is read only to be refused with its own message: not listed as allowed.
    ['metrics: [{name: request-success-rate, thresholdRange: {min: 99}, templateVariables: {a: b}}]', 'analysis.metrics[0] has unknown field "templateVariables"; allowed: name, query, thresholdRange, threshold, interval ("templateVariables" is Flagger\'s'],
    ['r: &r {min: 99}\nmetrics:\n' + Array.from({ length: 60 }, (_, i) => `- {name: m${i}, query: up, thresholdRange: *r}`).join('\n'), 'its aliases (*name) expand to too many values: at most 50 in all'],
    ['interval: 0s', 'analysis.interval "0s" is shorter than 1s'],
    ['interval: 99999999999999999999h', 'analysis.interval "99999999999999999999h" is longer than 24h; use a duration from 1s to 24h'],
    ['metrics: [{name: request-duration, thresholdRange: {max: 500}, interval: 10ms}]', 'analysis.metrics[0].interval "10ms" is shorter than 1s; use a duration from 1s to 24h'],
    ['metrics: [{name: request-duration, thresholdRange: {max: 500}, interval: 25h}]', 'analysis.metrics[0].interval "25h" is longer than 24h'],
    ['webhooks: [{name: gate, url: "http://x/", timeout: 1ms}]', 'analysis.webhooks[0].timeout "1ms" is shorter than 1s; use a duration from 1s to 1h'],
    ['webhooks: [{name: gate, url: "http://x/", timeout: 2h}]', 'analysis.webhooks[0].timeout "2h" is longer than 1h'],
    ['metrics: [{name: request-success-rate, thresholdRange: {min: 150}}]', 'analysis.metrics[0].thresholdRange.min 150 can never pass: request-success-rate is a percentage from 0 to 100; use a min of at most 100, e.g. 99'],
    ['metrics: [{name: request-success-rate, threshold: 101}]', 'analysis.metrics[0].threshold 101 can never pass: request-success-rate is a percentage from 0 to 100'],
    ['metrics: [{name: request-success-rate, thresholdRange: {max: -1}}]', 'analysis.metrics[0].thresholdRange.max -1 can never pass: request-success-rate is a percentage from 0 to 100; use a max of at least 0'],
    ['metrics: [{name: request-duration, thresholdRange: {max: -5}}]', 'analysis.metrics[0].thresholdRange.max -5 can never pass: request-duration is a p99 latency in milliseconds, always above 0; use a max above 0, e.g. 500'],
    ['metrics: [{name: request-duration, thresholdRange: {max: 0}}]', 'analysis.metrics[0].thresholdRange.max 0 can never pass: request-duration is a p99 latency in milliseconds, always above 0; use a max above 0, e.g. 500'],
  ];
  for (const [text, message] of refused) {
    it(`refuses ${JSON.stringify(text.length > 80 ? `${text.slice(0, 77)}...` : text)}`, () => {
      const errors = errorsOf(text);
      assert.ok(errors.some((e) => e.includes(message)), `got: ${errors.join(' | ')}`);
    });
  }

  it('accepts the bounds themselves and the scaled-down intervals the tests use', () => {
    const r = parseAnalysis('interval: 1s\nmetrics: [{name: request-success-rate, thresholdRange: {min: 100}, interval: 24h}, {name: request-duration, thresholdRange: {max: 0.5}, interval: 5s}]\nwebhooks: [{name: g, url: "http://x/", timeout: 1h}]');
    assert.ok(r.ok, r.ok ? '' : r.errors.join(' | '));
    assert.deepEqual([r.value.intervalMs, r.value.metrics[0]!.intervalMs, r.value.webhooks[0]!.timeoutMs], [1000, 86_400_000, 3_600_000]);
    const h = parseAnalysis('interval: 24h');
    assert.ok(h.ok);
  });
});

describe('analysis: what a Flagger user pastes, and text that would cost or leak', () => {
  const only = (text: string) => {
    const errors = errorsOf(text);
    assert.equal(errors.length, 1, errors.join(' | '));
    return errors[0]!;
  };

  it('refuses a custom query the progressor could not render, at admission rather than as failed checks', () => {
    assert.equal(
      only('metrics: [{name: errors, query: \'sum(rate(http_errors{ns="{{ ns }}"}[{{ interval }}]))\', thresholdRange: {max: 1}}]'),
      'analysis.metrics[0].query uses unknown template variable {{ ns }}; allowed: {{ namespace }}, {{ target }}, {{ canary }}, {{ stable }}, {{ interval }}',
    );
    assert.match(only('metrics: [{name: e, query: \'x{d="{{ variables.direction }}"}\', thresholdRange: {max: 1}}]'), /Flagger's templateVariables are not supported/);
    assert.match(only('metrics: [{name: e, query: "   ", thresholdRange: {max: 1}}]'), /^analysis\.metrics\[0\]\.query is empty/);
    // A cluster default is read by the same code: a bad query there stops the start instead of every release.
    const r = parseAnalysis(undefined, { metrics: [{ name: 'e', query: 'x{n="{{ ns }}"}', thresholdRange: { max: 1 } }] });
    assert.ok(!r.ok && /metrics\[0\]\.query uses unknown template variable \{\{ ns \}\}/.test(r.errors[0]!));
  });

  it('bounds the cost of parsing: a text of thousands of keys is refused before the YAML parser sees it', () => {
    const many = `{${Array.from({ length: 9000 }, (_, i) => `k${i}:0`).join(',')}}`;
    const started = performance.now();
    assert.match(only(many), /^analysis is too large to read: \d+ entries \(keys, list items, flow separators\), at most 1000/);
    assert.ok(performance.now() - started < 200, 'refused without parsing');
    // A large real one (eight custom queries and a webhook) is far below the bound.
    const real = `interval: 1m\nthreshold: 5\nmaxWeight: 50\nstepWeight: 10\nmetrics:\n${Array.from({ length: 8 }, (_, i) => `- name: m${i}\n  thresholdRange:\n    max: 5\n  interval: 1m\n  query: |\n    100 - sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}",response_code!~"5.*"}[{{ interval }}])) / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}"}[{{ interval }}])) * 100\n`).join('')}webhooks:\n- name: load\n  url: http://flagger-loadtester.test/\n  metadata:\n    cmd: "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"\n`;
    const ok = parseAnalysis(real);
    assert.ok(ok.ok, ok.ok ? '' : ok.errors.join(' | '));
    assert.equal(ok.value.metrics.length, 8);
    // A long k6 script in a webhook's metadata (Flagger's load-test example) is one value, in YAML as in JSON.
    const script = Array.from({ length: 300 }, (_, i) => `http.get("http://review-canary:9898/", { tags: { n: "${i}" } }); check(r, { ok: (x) => x.status === 200 });`).join('\n');
    const k6 = { metrics: [{ name: 'request-success-rate', thresholdRange: { min: 99 } }], webhooks: [{ name: 'k6', type: 'pre-rollout', url: 'http://k6-loadtester.test/', metadata: { script } }] };
    const yamlText = `metrics:\n- name: request-success-rate\n  thresholdRange: {min: 99}\nwebhooks:\n- name: k6\n  type: pre-rollout\n  url: http://k6-loadtester.test/\n  metadata:\n    script: |\n${script.split('\n').map((l) => `      ${l}`).join('\n')}\n`;
    for (const text of [yamlText, JSON.stringify(k6)]) {
      const r = parseAnalysis(text);
      assert.ok(r.ok, r.ok ? '' : r.errors.join(' | '));
      assert.equal(r.value.webhooks[0]!.metadata.script!.trimEnd(), script);
    }
  });

  it('names at most five unknown fields and counts the rest; names are quoted with control characters escaped and cut short', () => {
    const fields = Array.from({ length: 40 }, (_, i) => `k${i}: 0`).join('\n');
    assert.equal(only(fields), 'analysis has unknown fields "k0", "k1", "k2", "k3", "k4" and 35 more; allowed: interval, threshold, maxWeight, stepWeight, stepWeights, metrics, webhooks');
    const long = only(`metrics: [{name: "${'x'.repeat(20_000)}"}]`);
    assert.ok(long.length < 300, `${long.length} characters`);
    assert.equal(only('metrics: [{name: "a\\tb\\nc"}]'), 'analysis.metrics[0] "a\\tb\\nc" is not a built-in metric (request-success-rate, request-duration) and has no query; add a PromQL query or use a built-in name');
    assert.ok(only(`metrics: [{name: "${'y'.repeat(5000)}", query: up, thresholdRange: {max: 1}}, {name: "${'y'.repeat(5000)}", query: up, thresholdRange: {max: 1}}]`).length < 200);
  });

  it('says what Flagger\'s features are and what to do instead', () => {
    const cases: Array<[string, RegExp]> = [
      ['metrics: [{name: "404s percentage", templateRef: {name: not-found-percentage, namespace: istio-system}, thresholdRange: {max: 5}, interval: 1m}]', /^analysis\.metrics\[0\]\.templateRef is Flagger's MetricTemplate reference, which kube-canary does not use; put the template's PromQL in analysis\.metrics\[0\]\.query instead$/],
      ['stepWeightPromotion: 100', /"stepWeightPromotion" is Flagger's: not supported: kube-canary promotes by rolling the Deployment out/],
      ['metrics: [{name: e, query: up, thresholdRange: {max: 1}, templateVariables: {direction: inbound}}]', /"templateVariables" is Flagger's: not supported: write the values into the query/],
      ['canaryAnalysis:\n  interval: 1m', /unknown field "canaryAnalysis".*paste only the fields under "canaryAnalysis:" \(interval, threshold, \.\.\.\), not "canaryAnalysis:" itself/],
      ['skipAnalysis: true', /"skipAnalysis" is Flagger's: here an annotation: kube-canary\.io\/skip-analysis: "true"/],
      ['progressDeadlineSeconds: 60', /kube-canary\.io\/progress-deadline, e\.g\. "10m"/],
      ['match: [{headers: {x: {exact: "1"}}}]', /A\/B routing by header or cookie, not supported/],
      ['{ // comment\n "interval": "1m" }', /JSON has no comments; in YAML a comment starts with #/],
    ];
    for (const [text, message] of cases) assert.match(only(text), message);
  });

  it('never quotes what may be a credential: a webhook URL\'s user and password, metadata values', () => {
    const e = errorsOf('webhooks:\n- name: load\n  url: htps://admin:Sup3rS3cret@loadtester.test/\n  metadata:\n    token: 8812345678\n    other: {a: b}').join(' | ');
    assert.ok(!e.includes('Sup3rS3cret') && !e.includes('admin') && !e.includes('8812345678'), e);
    assert.match(e, /url "htps:\/\/\*\*\*@loadtester\.test\/" is not an http\(s\) URL/);
    assert.match(e, /metadata\.token is a number; metadata values must be strings \(put quotes around it\)/);
    assert.match(errorsOf('webhooks: [{name: a, url: "http://x/", metadata: [secret]}]').join(), /metadata must be a mapping of strings, got a list/);
  });

  it('refuses a webhook URL whose password has a "%" that is no percent-escape (every call would fail), without quoting it', () => {
    const e = errorsOf('webhooks: [{name: load, url: "http://ci:50%off@loadtester.test/"}]').join(' | ');
    assert.match(e, /analysis\.webhooks\[0\]\.url "http:\/\/\*\*\*@loadtester\.test\/": the password in the URL has a "%" that is not a percent-escape \(%XX of UTF-8\); write a literal % as %25/);
    assert.ok(!e.includes('50%off') && !e.includes('ci:'), e);
    assert.match(errorsOf('webhooks: [{name: load, url: "http://c%FFi:pw@loadtester.test/"}]').join(), /the user in the URL has a "%"/);
    assert.ok(parseAnalysis('webhooks: [{name: load, url: "http://ci:50%25off@loadtester.test/"}]').ok);
  });

  it('YAML beyond an analysis: one document, no tags (and nothing printed to stderr), merge keys work', () => {
    assert.equal(only('interval: 1m\n---\nthreshold: 5'), 'analysis is not valid YAML or JSON: it holds more than one YAML document ("---" or "..." on a line of its own); keep one');
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      assert.equal(only('interval: !dur1 1m'), 'analysis is not valid YAML or JSON: line 1, column 11: unknown tag: !dur1; an analysis uses no YAML tags, remove it');
      only('? [a, b]\n: 1');
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(warnings, []);
    const merged = parseAnalysis('metrics:\n- &d {name: request-duration, thresholdRange: {max: 500}, interval: 30s}\n- <<: *d\n  name: custom\n  query: up\n');
    assert.ok(merged.ok, merged.ok ? '' : merged.errors.join(' | '));
    assert.deepEqual(merged.value.metrics, [{ name: 'request-duration', max: 500, intervalMs: 30_000 }, { name: 'custom', query: 'up', max: 500, intervalMs: 30_000 }]);
  });

  it('suggests a unit for a bare number only where the result would be accepted', () => {
    assert.equal(only('interval: 30'), 'analysis.interval 30 is a bare number; write a duration with a unit, such as "30s" or "30m"');
    assert.equal(only('interval: 0'), 'analysis.interval 0 is a bare number; use a duration from 1s to 24h, e.g. "1m"');
    assert.equal(only('interval: 1000000000'), 'analysis.interval 1000000000 is a bare number; use a duration from 1s to 24h, e.g. "1m"');
    assert.equal(only('interval: 3600'), 'analysis.interval 3600 is a bare number; write a duration with a unit, such as "3600s"');
  });
});
