/**
 * PrometheusProvider against a REAL Prometheus (Debian's package) scraping the traffic
 * simulator (in-process, fixed plan: no cluster needed). Checks that the built-in queries and
 * custom templates give the numbers the simulated traffic implies, and that every failure mode
 * of a real server is a failed check.
 */
import assert from 'node:assert/strict';
import type { MetricCheck } from '../../src/config/analysis.js';
import { PrometheusProvider } from '../../src/metrics/prometheus.js';
import type { MetricTarget } from '../../src/metrics/provider.js';
import { waitFor } from './harness/cluster.js';
import { startPrometheus, type PrometheusHandle } from './harness/prometheus.js';
import { Simulator } from './simulator/server.js';

const svc = 'review.test.svc.cluster.local';
const good: MetricTarget = { namespace: 'test', stable: 'review', canary: 'review', intervalMs: 5000 };
const bad: MetricTarget = { namespace: 'test', stable: 'review', canary: 'review-canary', intervalMs: 5000 };
const idle: MetricTarget = { namespace: 'test', stable: 'review', canary: 'nobody-canary', intervalMs: 5000 };
// Another namespace, same workload name: the other tests' queries over every workload see no new series.
const broken: MetricTarget = { namespace: 'broken', stable: 'review', canary: 'review-canary', intervalMs: 5000 };
const successRate = (min: number): MetricCheck => ({ name: 'request-success-rate', min, intervalMs: 5000 });
const duration = (max: number): MetricCheck => ({ name: 'request-duration', max, intervalMs: 5000 });

describe('PrometheusProvider against a real Prometheus scraping the simulator', function () {
  this.timeout(60_000);
  let sim: Simulator;
  let prom: PrometheusHandle;
  let provider: PrometheusProvider;

  before(async () => {
    sim = new Simulator({ host: '127.0.0.1', port: 0, tickMs: 100 });
    sim.setPlan({
      flows: [
        { namespace: 'test', workload: 'review', service: svc, rps: 80, errorRate: 0, latencyMs: 40 },
        { namespace: 'test', workload: 'review-canary', service: svc, rps: 20, errorRate: 0.3, latencyMs: 300 },
        // A release that fails every request: its only series has response_code 503.
        { namespace: 'broken', workload: 'review-canary', service: 'review.broken.svc.cluster.local', rps: 20, errorRate: 1, latencyMs: 10 },
      ],
      unroutedRps: 0,
      notes: [],
      routes: {},
    });
    const address = await sim.start();
    prom = await startPrometheus({ targets: [address], name: 'prometheus-provider-e2e' });
    provider = new PrometheusProvider({ url: prom.url, timeoutMs: 3000 });
    // rate() over a 5s window needs two scrapes inside it.
    await waitFor('4 scrapes of the simulator', async () => {
      const r = (await prom.query('count_over_time(istio_requests_total{destination_workload="review"}[10s])')) as { data?: { result?: Array<{ value: [number, string] }> } };
      return Number(r.data?.result?.[0]?.value[1] ?? 0) >= 4;
    }, { timeoutMs: 20_000 });
  });

  after(async () => {
    await prom?.stop({ removeData: true });
    await sim?.stop();
  });

  it('request-success-rate: 100% for the healthy workload, ~70% for the 30%-5xx one', async () => {
    const ok = await provider.check(successRate(99), good);
    assert.equal(ok.passed, true, ok.message);
    assert.equal(ok.value, 100);
    const ko = await provider.check(successRate(99), bad);
    assert.equal(ko.passed, false, ko.message);
    assert.ok(ko.value! > 60 && ko.value! < 80, `value ${ko.value}`);
    assert.match(ko.message, /below the minimum 99/);
  });

  it('request-duration: p99 from Istio\'s buckets (40 ms -> <= 50, 300 ms -> in (250, 500])', async () => {
    const fast = await provider.check(duration(100), good);
    assert.equal(fast.passed, true, fast.message);
    assert.ok(fast.value! > 25 && fast.value! <= 50, `value ${fast.value}`);
    const slow = await provider.check(duration(200), bad);
    assert.equal(slow.passed, false, slow.message);
    assert.ok(slow.value! > 250 && slow.value! <= 500, `value ${slow.value}`);
  });

  it('request-success-rate of a canary answering every request with a 5xx is 0 %, not "no data", batched or not', async () => {
    for (const p of [provider, new PrometheusProvider({ url: prom.url, timeoutMs: 3000 })]) {
      const [r, ok] = await Promise.all([p.check(successRate(99), broken), p.check(successRate(99), good)]);
      assert.equal(r!.passed, false, r!.message);
      assert.equal(r!.value, 0, r!.message);
      assert.match(r!.message, /request-success-rate 0 is below the minimum 99/);
      assert.equal(ok!.value, 100, ok!.message);
    }
  });

  it('a workload without traffic is a failed check (no data), never a pass', async () => {
    for (const m of [successRate(0), duration(1e9)]) {
      const r = await provider.check(m, idle);
      assert.equal(r.passed, false, r.message);
      assert.match(r.message, /no data|NaN/);
    }
  });

  it('releases checked at the same moment share one batched query per metric, with the numbers of one query each', async () => {
    const batching = new PrometheusProvider({ url: prom.url, timeoutMs: 3000 });
    const [ok, ko, none] = await Promise.all([good, bad, idle].map((t) => batching.check(successRate(99), t)));
    assert.equal(batching.queries, 1);
    assert.deepEqual([ok!.passed, ok!.value], [true, 100], ok!.message);
    assert.ok(ko!.value! > 60 && ko!.value! < 80 && !ko!.passed, `value ${ko!.value}`);
    assert.equal(none!.passed, false, none!.message);
    assert.match(none!.message, /no data/);
    const [fast, slow] = await Promise.all([good, bad].map((t) => batching.check(duration(200), t)));
    assert.equal(batching.queries, 2);
    assert.ok(fast!.passed && fast!.value! > 25 && fast!.value! <= 50, `value ${fast!.value}`);
    assert.ok(!slow!.passed && slow!.value! > 250 && slow!.value! <= 500, `value ${slow!.value}`);
  });

  it('custom queries get Flagger\'s template variables and must return exactly one series', async () => {
    const q: MetricCheck = {
      name: 'error-rate',
      query: 'sum(rate(istio_requests_total{destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}",response_code=~"5.."}[{{ interval }}])) / sum(rate(istio_requests_total{destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}"}[{{ interval }}]))',
      max: 0.05,
      intervalMs: 5000,
    };
    const r = await provider.check(q, bad);
    assert.equal(r.passed, false, r.message);
    assert.ok(r.value! > 0.2 && r.value! < 0.4, `value ${r.value}`);
    const stableRef = await provider.check({ name: 'stable-traffic', query: 'sum(rate(istio_requests_total{destination_workload="{{ stable }}"}[{{ interval }}]))', min: 50, intervalMs: 5000 }, bad);
    assert.equal(stableRef.passed, true, stableRef.message);
    const many = await provider.check({ name: 'per-workload', query: 'sum by (destination_workload) (rate(istio_requests_total[{{ interval }}]))', min: 0, intervalMs: 5000 }, bad);
    assert.equal(many.passed, false);
    assert.match(many.message, /2 series/);
    const broken = await provider.check({ name: 'broken', query: 'sum(rate(', min: 0, intervalMs: 5000 }, bad);
    assert.equal(broken.passed, false);
    assert.match(broken.message, /HTTP 400/);
  });

  it('Prometheus stopped: every check fails as unreachable', async () => {
    await prom.stop();
    const r = await provider.check(successRate(0), good);
    assert.equal(r.passed, false);
    assert.match(r.message, /unreachable/);
  });
});
