import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { generateCerts } from '../../src/certs/generate.js';
import type { MetricCheck } from '../../src/config/analysis.js';
import {
  PrometheusProvider,
  batchedQuery,
  buildQuery,
  durationQuery,
  extractByWorkload,
  extractValue,
  judge,
  parseSampleValue,
  promDuration,
  successRateQuery,
  varsFor,
} from '../../src/metrics/prometheus.js';
import { redactUrl } from '../../src/metrics/http-client.js';
import type { MetricTarget } from '../../src/metrics/provider.js';
import { signalHolds, watchListenerWarnings } from '../support/signal.js';

const target: MetricTarget = { namespace: 'test', stable: 'review', canary: 'review-canary', intervalMs: 60_000 };
const sr: MetricCheck = { name: 'request-success-rate', min: 99, intervalMs: 30_000 };
const dur: MetricCheck = { name: 'request-duration', max: 500, intervalMs: 30_000 };

describe('prometheus: query building (pure)', () => {
  it('builds Flagger\'s request-success-rate over the canary workload, reporter=destination, the metric interval as window', () => {
    const q = buildQuery(sr, target);
    assert.ok('query' in q);
    assert.equal(
      q.query,
      '(sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="test",destination_workload="review-canary",response_code!~"5.*"}[30s])) or ' +
        '0 * sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="test",destination_workload="review-canary"}[30s]))) / ' +
        'sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="test",destination_workload="review-canary"}[30s])) * 100',
    );
  });

  it('builds the p99 request-duration from the Istio histogram', () => {
    const q = buildQuery(dur, target);
    assert.ok('query' in q);
    assert.equal(
      q.query,
      'histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="test",destination_workload="review-canary"}[30s])))',
    );
  });

  it('falls back to the analysis interval when the metric has none', () => {
    assert.equal(varsFor({ ...sr, intervalMs: 0 }, target).interval, '1m');
    assert.equal(promDuration(1500), '1500ms');
    assert.equal(promDuration(90_000), '90s');
  });

  it('escapes label values so a name cannot break out of the selector', () => {
    const q = successRateQuery({ namespace: 'a"b', target: 'x\\y', canary: 'x', stable: 's', interval: '1m' });
    assert.match(q, /destination_workload_namespace="a\\"b"/);
    assert.match(q, /destination_workload="x\\\\y"/);
    assert.match(durationQuery({ namespace: 'n', target: 't', canary: 't', stable: 's', interval: '5s' }), /\[5s\]/);
  });

  it('substitutes the template variables of a custom query with the canary\'s values', () => {
    const q = buildQuery({ name: 'errors', query: 'sum(rate(x{ns="{{ namespace }}",w="{{target}}",c="{{ canary }}",s="{{  stable }}"}[{{ interval }}]))', max: 1, intervalMs: 30_000 }, target);
    assert.deepEqual(q, { query: 'sum(rate(x{ns="test",w="review-canary",c="review-canary",s="review"}[30s]))' });
  });

  it('refuses an unknown metric without a query', () => {
    assert.ok('error' in buildQuery({ name: 'foo', intervalMs: 1000 }, target));
  });
});

describe('prometheus: batched built-in queries (pure)', () => {
  it('one query over several canaries, one series per workload, names matched exactly', () => {
    const q = batchedQuery('request-success-rate', 'test', ['review-canary', 'a.b-canary'], '30s');
    assert.equal(
      q,
      '(sum by (destination_workload) (rate(istio_requests_total{reporter="destination",destination_workload_namespace="test",destination_workload=~"review-canary|a\\\\.b-canary",response_code!~"5.*"}[30s])) or ' +
        '0 * sum by (destination_workload) (rate(istio_requests_total{reporter="destination",destination_workload_namespace="test",destination_workload=~"review-canary|a\\\\.b-canary"}[30s]))) / ' +
        'sum by (destination_workload) (rate(istio_requests_total{reporter="destination",destination_workload_namespace="test",destination_workload=~"review-canary|a\\\\.b-canary"}[30s])) * 100',
    );
    assert.match(batchedQuery('request-duration', 'test', ['x-canary', 'y-canary'], '1m'), /^histogram_quantile\(0\.99, sum by \(le, destination_workload\) \(rate\(istio_request_duration_milliseconds_bucket\{.*destination_workload=~"x-canary\|y-canary"\}\[1m\]\)\)\)$/);
  });

  it('splits the answer per workload; a workload without a series has no data; a failed query fails them all', () => {
    const body = { status: 'success', data: { resultType: 'vector', result: [{ metric: { destination_workload: 'a-canary' }, value: [1, '99.5'] }, { metric: { destination_workload: 'b-canary' }, value: [1, 'NaN'] }] } };
    const m = extractByWorkload(body, ['a-canary', 'b-canary', 'c-canary']);
    assert.deepEqual(m.get('a-canary'), { value: 99.5 });
    assert.ok(Number.isNaN((m.get('b-canary') as { value: number }).value));
    assert.match((m.get('c-canary') as { error: string }).error, /^no data/);
    const failed = extractByWorkload({ status: 'error', errorType: 'timeout', error: 'query timed out' }, ['a-canary', 'b-canary']);
    for (const w of ['a-canary', 'b-canary']) assert.match((failed.get(w) as { error: string }).error, /timeout: query timed out/);
  });
  it('null or garbage series never throw: a workload without a well-formed series fails, saying the answer is malformed', () => {
    const answer = (result: unknown[]) => ({ status: 'success', data: { resultType: 'vector', result } });
    const m = extractByWorkload(answer([null, 'x', { metric: null, value: null }, { metric: { destination_workload: 'a-canary' }, value: [1, '99.5'] }]), ['a-canary', 'b-canary']);
    assert.deepEqual(m.get('a-canary'), { value: 99.5 });
    assert.match((m.get('b-canary') as { error: string }).error, /^Prometheus answer is malformed \(3 of 4 series unreadable/);
    assert.match((extractByWorkload(answer([null]), ['a-canary']).get('a-canary') as { error: string }).error, /malformed \(1 of 1 series unreadable/);
  });
});

describe('prometheus: result judging (pure)', () => {
  const vec = (...vals: string[]) => ({ status: 'success', data: { resultType: 'vector', result: vals.map((v, i) => ({ metric: { i: String(i) }, value: [1, v] })) } });

  it('takes the single sample of a vector or a scalar', () => {
    assert.deepEqual(extractValue(vec('99.5')), { value: 99.5 });
    assert.deepEqual(extractValue({ status: 'success', data: { resultType: 'scalar', result: [1, '3'] } }), { value: 3 });
  });

  it('an empty result is "no data"', () => {
    const r = extractValue(vec());
    assert.ok('error' in r);
    assert.match(r.error, /no data/);
  });

  it('more than one series is an error naming the count', () => {
    const r = extractValue(vec('1', '2'));
    assert.ok('error' in r);
    assert.match(r.error, /2 series/);
  });

  it('a null or garbage series is an error, never a throw', () => {
    for (const series of [null, 7, 'x', []]) {
      const r = extractValue({ status: 'success', data: { resultType: 'vector', result: [series] } });
      assert.deepEqual(r, { error: 'Prometheus sample is malformed' }, JSON.stringify(series));
    }
  });

  it('a matrix or a Prometheus error is an error', () => {
    assert.ok('error' in extractValue({ status: 'success', data: { resultType: 'matrix', result: [] } }));
    const e = extractValue({ status: 'error', errorType: 'bad_data', error: 'parse error' });
    assert.ok('error' in e);
    assert.match(e.error, /bad_data: parse error/);
    assert.ok('error' in extractValue('nope'));
  });

  it('parses NaN and infinities', () => {
    assert.ok(Number.isNaN(parseSampleValue('NaN')));
    assert.equal(parseSampleValue('+Inf'), Infinity);
    assert.equal(parseSampleValue('-Inf'), -Infinity);
    assert.ok(Number.isNaN(parseSampleValue('')));
    assert.ok(Number.isNaN(parseSampleValue(5)));
  });

  it('compares against an inclusive range', () => {
    assert.equal(judge('m', 99, 99).passed, true);
    assert.equal(judge('m', 500, undefined, 500).passed, true);
    assert.equal(judge('m', 5, 1, 5).passed, true);
    const low = judge('m', 98.9, 99);
    assert.equal(low.passed, false);
    assert.match(low.message, /98\.9 is below the minimum 99/);
    const high = judge('m', 501, undefined, 500);
    assert.equal(high.passed, false);
    assert.match(high.message, /above the maximum 500/);
    assert.deepEqual({ min: low.min, value: low.value }, { min: 99, value: 98.9 });
  });

  it('a value at its bound up to float rounding is at the bound: Prometheus gives an exact 29 % as 28.999999999999996', () => {
    // Values a real Prometheus 2.42 returned for sum(rate(non-5xx)) / sum(rate(all)) * 100 with exactly k of every 100 requests non-5xx.
    for (const [v, k] of [[28.999999999999996, 29], [6.999999999999999, 7], [56.99999999999999, 57], [57.99999999999999, 58]] as const) {
      const r = judge('request-success-rate', v, k);
      assert.equal(r.passed, true, r.message);
      assert.equal(judge('m', k + (k - v), undefined, k).passed, true);
    }
    assert.equal(judge('m', 98.9999, 99).passed, false);
    assert.equal(judge('m', 500.001, undefined, 500).passed, false);
  });

  it('a failed value is never shown as its bound ("99 is below the minimum 99")', () => {
    const r = judge('request-success-rate', 98.9996, 99);
    assert.equal(r.passed, false);
    assert.match(r.message, /request-success-rate 98\.9996 is below the minimum 99$/);
    assert.match(judge('m', 500.0004, undefined, 500).message, /m 500\.0004 is above the maximum 500$/);
    assert.match(judge('m', 98.5, 99).message, /m 98\.5 is below the minimum 99$/);
  });

  it('NaN and Inf never pass, whatever the range', () => {
    for (const v of [NaN, Infinity, -Infinity]) {
      assert.equal(judge('m', v, -Infinity as number).passed, false);
      assert.equal(judge('m', v, undefined, Infinity).passed, false);
    }
    assert.match(judge('m', NaN, 1).message, /NaN/);
    assert.match(judge('m', Infinity, 1).message, /\+Inf/);
  });

  it('redacts credentials and query strings from printed URLs', () => {
    assert.equal(redactUrl('http://user:secret@prom:9090/sub?token=abc'), 'http://prom:9090/sub');
  });
});

describe('prometheus: HTTP failures are failed checks, never passes', () => {
  let server: Server;
  let base = '';
  let handler: (path: string, body: string, headers: Record<string, unknown>) => { status: number; body: string; delayMs?: number } = () => ({ status: 200, body: '{}' });
  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const r = handler(req.url ?? '', body, req.headers);
        const send = () => {
          if (res.destroyed) return;
          res.writeHead(r.status, { 'content-type': 'application/json' }).end(r.body);
        };
        if (r.delayMs) setTimeout(send, r.delayMs);
        else send();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('passes a good value and sends the query as a form POST to /api/v1/query', async () => {
    let seen: { path: string; query: string | null; auth: unknown } | undefined;
    handler = (path, body, headers) => {
      seen = { path, query: new URLSearchParams(body).get('query'), auth: headers.authorization };
      return { status: 200, body: JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [{ metric: {}, value: [1, '99.9'] }] } }) };
    };
    const p = new PrometheusProvider({ url: `${base.replace('http://', 'http://u:p%40ss@')}/prefix/`, timeoutMs: 2000 });
    const r = await p.check(sr, target);
    assert.equal(r.passed, true, r.message);
    assert.equal(r.value, 99.9);
    assert.equal(seen?.path, '/prefix/api/v1/query');
    assert.match(seen?.query ?? '', /^\(sum\(rate\(istio_requests_total/);
    assert.equal(seen?.auth, `Basic ${Buffer.from('u:p@ss').toString('base64')}`);
    assert.equal(p.queries, 1);
  });

  it('a password with a "%" that is no percent-escape is refused at construction, saying so, without quoting it', () => {
    assert.throws(() => new PrometheusProvider({ url: 'http://u:50%off@prom:9090', timeoutMs: 1000 }), (e: Error) => /^the password in the URL has a "%" that is not a percent-escape \(%XX of UTF-8\); write a literal % as %25$/.test(e.message));
  });

  it('HTTP error: failed, naming the status and Prometheus\' error, never the credentials', async () => {
    handler = () => ({ status: 400, body: JSON.stringify({ status: 'error', errorType: 'bad_data', error: 'parse error at char 3' }) });
    const r = await new PrometheusProvider({ url: base.replace('http://', 'http://u:secret@'), timeoutMs: 2000 }).check(sr, target);
    assert.equal(r.passed, false);
    assert.match(r.message, /HTTP 400: parse error at char 3/);
    assert.doesNotMatch(r.message, /secret/);
  });

  it('a redirect (a login page of a proxy in front of Prometheus) is not followed: failed, saying what to point the flag at', async () => {
    handler = () => ({ status: 302, body: '' });
    const r = await new PrometheusProvider({ url: base.replace('http://', 'http://u:secret@'), timeoutMs: 2000 }).check(sr, target);
    assert.equal(r.passed, false);
    assert.match(r.message, /answered HTTP 302 \(a redirect, e\.g\. to a login page of a proxy in front of it\); point --prometheus-url at Prometheus itself/);
    assert.doesNotMatch(r.message, /secret|unreachable/);
  });

  it('timeout: failed, saying it timed out', async () => {
    handler = () => ({ status: 200, body: '{}', delayMs: 1000 });
    const t0 = Date.now();
    const r = await new PrometheusProvider({ url: base, timeoutMs: 150 }).check(sr, target);
    assert.equal(r.passed, false);
    assert.match(r.message, /timeout/);
    assert.ok(Date.now() - t0 < 900);
  });

  it('caller abort: failed, saying it was cancelled', async () => {
    handler = () => ({ status: 200, body: '{}', delayMs: 1000 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const r = await new PrometheusProvider({ url: base, timeoutMs: 5000 }).check(sr, target, ac.signal);
    assert.equal(r.passed, false);
    assert.match(r.message, /cancelled/);
  });

  it('unreachable: failed, saying so', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const r = await new PrometheusProvider({ url: `http://127.0.0.1:${port}`, timeoutMs: 2000 }).check(dur, target);
    assert.equal(r.passed, false);
    assert.match(r.message, /unreachable: ECONNREFUSED/);
    assert.equal(r.max, 500);
  });

  it('an answer larger than 1 MiB is not read whole: failed at once, saying so', async () => {
    // E.g. a custom query over every series of a big Prometheus: hundreds of MB otherwise parsed in the progressor.
    let written = 0;
    const big = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"status":"success","data":{"resultType":"vector","result":[');
      const series = Buffer.from(`{"metric":{"pod":"${'p'.repeat(1000)}"},"value":[1,"1"]},`.repeat(1000));
      const more = () => {
        while (!res.destroyed && written < 2_000 << 20) {
          written += series.length;
          if (!res.write(series)) return void res.once('drain', more);
        }
      };
      more();
    });
    await new Promise<void>((r) => big.listen(0, '127.0.0.1', r));
    try {
      const t0 = Date.now();
      const r = await new PrometheusProvider({ url: `http://127.0.0.1:${(big.address() as AddressInfo).port}`, timeoutMs: 20_000 }).check({ name: 'custom', query: 'up', min: 0, intervalMs: 1000 }, target);
      assert.equal(r.passed, false);
      assert.match(r.message, /answered HTTP 200 with more than 1 MiB, not read; a check needs one series: aggregate the query/);
      assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
      assert.ok(written < 64 << 20, `the server wrote ${written >> 20} MiB before the client let go`);
    } finally {
      big.closeAllConnections();
      big.close();
    }
  });

  it('HTTPS with a certificate the progressor does not trust: failed, naming the certificate and the fix', async () => {
    const pki = generateCerts({ hosts: ['127.0.0.1'], validDays: 1, keyBits: 1024 });
    const tls = createHttpsServer({ key: pki.key, cert: pki.cert }, (req, res) => void req.resume().on('end', () => res.end('{}')));
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
    try {
      const r = await new PrometheusProvider({ url: `https://127.0.0.1:${(tls.address() as AddressInfo).port}`, timeoutMs: 2000 }).check(sr, target);
      assert.equal(r.passed, false);
      assert.match(r.message, /^request-success-rate: Prometheus at https:\/\/127\.0\.0\.1:\d+\/: its TLS certificate is not accepted: UNABLE_TO_VERIFY_LEAF_SIGNATURE .*NODE_EXTRA_CA_CERTS/);
    } finally {
      tls.closeAllConnections();
      tls.close();
    }
  });

  it('empty result, NaN, Inf, several series, non-JSON: all failed with a reason', async () => {
    const cases: Array<[string, RegExp]> = [
      [JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [] } }), /no data/],
      [JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [{ metric: {}, value: [1, 'NaN'] }] } }), /NaN/],
      [JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [{ metric: {}, value: [1, '+Inf'] }] } }), /\+Inf/],
      [JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [{ metric: { a: '1' }, value: [1, '1'] }, { metric: { a: '2' }, value: [1, '1'] }] } }), /2 series/],
      ['<html>proxy</html>', /not JSON/],
    ];
    for (const [body, re] of cases) {
      handler = () => ({ status: 200, body });
      const r = await new PrometheusProvider({ url: base, timeoutMs: 2000 }).check({ name: 'custom', query: 'up', min: 0, intervalMs: 1000 }, target);
      assert.equal(r.passed, false, body);
      assert.match(r.message, re);
    }
  });

  it('"no data" of a built-in metric over a window shorter than a minute says that the window may hold too few scrapes; over 1m it does not', async () => {
    handler = () => ({ status: 200, body: JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [] } }) });
    const p = new PrometheusProvider({ url: base, timeoutMs: 2000, batchWindowMs: 0 });
    const short = await p.check({ ...sr, intervalMs: 15_000 }, target);
    assert.match(short.message, /no data: .*; a rate over 15s needs two scrapes in that window: make the metric's interval at least twice Prometheus' scrape interval \(e\.g\. 1m\)$/);
    const long = await p.check({ ...sr, intervalMs: 60_000 }, target);
    assert.match(long.message, /no data/);
    assert.doesNotMatch(long.message, /scrapes/);
  });

  it('built-in checks of many releases arriving together go out as one query; each release gets its own value', async () => {
    const seen: string[] = [];
    handler = (_path, body) => {
      seen.push(new URLSearchParams(body).get('query') ?? '');
      const result = [
        { metric: { destination_workload: 'a-canary' }, value: [1, '100'] },
        { metric: { destination_workload: 'b-canary' }, value: [1, '90'] },
      ];
      return { status: 200, body: JSON.stringify({ status: 'success', data: { resultType: 'vector', result } }) };
    };
    const p = new PrometheusProvider({ url: base, timeoutMs: 2000 });
    const at = (name: string): MetricTarget => ({ namespace: 'test', stable: name, canary: `${name}-canary`, intervalMs: 30_000 });
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => p.check(sr, at(n))));
    assert.equal(p.queries, 1);
    assert.match(seen[0]!, /destination_workload=~"a-canary\|b-canary\|c-canary"/);
    assert.deepEqual([a!.passed, a!.value], [true, 100]);
    assert.deepEqual([b!.passed, b!.value], [false, 90]);
    assert.match(b!.message, /90 is below the minimum 99/);
    assert.equal(c!.passed, false, 'a release missing from the answer has no data, never a pass');
    assert.match(c!.message, /no data/);
  });

  it('a batched query that fails fails every check in it; batchWindowMs 0 sends one query per check', async () => {
    handler = () => ({ status: 503, body: JSON.stringify({ status: 'error', errorType: 'unavailable', error: 'overloaded' }) });
    const p = new PrometheusProvider({ url: base, timeoutMs: 2000 });
    const targets = ['a', 'b'].map((n): MetricTarget => ({ namespace: 'test', stable: n, canary: `${n}-canary`, intervalMs: 30_000 }));
    const rs = await Promise.all(targets.map((t) => p.check(dur, t)));
    assert.equal(p.queries, 1);
    for (const r of rs) {
      assert.equal(r.passed, false);
      assert.match(r.message, /HTTP 503: overloaded/);
    }
    const unbatched = new PrometheusProvider({ url: base, timeoutMs: 2000, batchWindowMs: 0 });
    await Promise.all(targets.map((t) => unbatched.check(dur, t)));
    assert.equal(unbatched.queries, 2);
  });

  it('a malformed answer to a batched query fails its checks with a message; nothing rejects unhandled, nothing is left waiting', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const at = (name: string): MetricTarget => ({ namespace: 'test', stable: name, canary: `${name}-canary`, intervalMs: 30_000 });
      for (const result of [[null], [null, null], ['garbage', 5, []]]) {
        handler = () => ({ status: 200, body: JSON.stringify({ status: 'success', data: { resultType: 'vector', result } }) });
        const p = new PrometheusProvider({ url: base, timeoutMs: 2000 });
        // Three workloads in one window (the batched query), one alone in its own (the single query).
        const all = Promise.all([...['a', 'b', 'c'].map((n) => p.check(sr, at(n))), p.check(dur, at('d'))]);
        const rs = await Promise.race([all, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('checks left waiting')), 3000))]);
        assert.equal(p.queries, 2);
        for (const r of rs) assert.equal(r.passed, false, r.message);
        for (const r of rs.slice(0, 3)) assert.match(r.message, /^request-success-rate: Prometheus answer is malformed \(\d of \d series unreadable/, JSON.stringify(result));
        assert.match(rs[3]!.message, /^request-duration: (Prometheus sample is malformed|the query returned \d series)/, JSON.stringify(result));
      }
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('checks given the progressor\'s one long-lived signal leave nothing on it, batched or not, and it still cancels them', async () => {
    handler = () => ({ status: 200, body: JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [{ metric: { destination_workload: 'a-canary' }, value: [1, '100'] }] } }) });
    const p = new PrometheusProvider({ url: base, timeoutMs: 2000, batchWindowMs: 1 });
    const lifetime = new AbortController();
    const warnings = watchListenerWarnings();
    const a: MetricTarget = { namespace: 'test', stable: 'a', canary: 'a-canary', intervalMs: 30_000 };
    const custom: MetricCheck = { name: 'custom', query: 'up', min: 0, intervalMs: 1000 };
    for (let i = 0; i < 30; i++) {
      const rs = await Promise.all([p.check(sr, a, lifetime.signal), p.check(dur, a, lifetime.signal), p.check(custom, a, lifetime.signal)]);
      for (const r of rs) assert.equal(r.passed, true, r.message);
    }
    assert.deepEqual(signalHolds(lifetime.signal), { listeners: 0, dependants: 0 });
    assert.deepEqual(await warnings.stop(), []);
    handler = () => ({ status: 200, body: '{}', delayMs: 1000 });
    const pending = [p.check(sr, a, lifetime.signal), p.check(custom, a, lifetime.signal)];
    setTimeout(() => lifetime.abort(), 50);
    for (const r of await Promise.all(pending)) assert.match(r.message, /cancelled/);
  });

  it('the signal probe of these tests sees what AbortSignal.any() leaves on a signal', () => {
    const lifetime = new AbortController();
    AbortSignal.any([lifetime.signal, AbortSignal.timeout(1000)]);
    assert.equal(signalHolds(lifetime.signal).dependants, 1, 'Node keeps AbortSignal.any()\'s dependants elsewhere now: update test/support/signal.ts');
  });

  it('an unknown template variable fails without querying', async () => {
    const p = new PrometheusProvider({ url: base, timeoutMs: 2000 });
    const r = await p.check({ name: 'custom', query: 'x{a="{{ foo }}"}', max: 1, intervalMs: 1000 }, target);
    assert.equal(r.passed, false);
    assert.equal(p.queries, 0);
  });
});
