import assert from 'node:assert/strict';
import { InvalidArgumentError } from 'commander';
import { durationOption, httpUrlOption, namespaceOption, nonEmptyListOption, seconds, trackLabelOption } from '../../src/cli/options.js';

describe('CLI option parsers', () => {
  describe('--track-label (a label key kube-canary writes on pods)', () => {
    const parse = trackLabelOption('--track-label');
    for (const ok of ['version', 'track', 'app.kubernetes.io/version', 'example.com/release-track', 'A_b.c-9']) {
      it(`accepts ${ok}`, () => assert.equal(parse(ok), ok));
    }
    const bad: Array<[string, RegExp]> = [
      ['', /--track-label "" is not a valid label key: the name part must be 1-63 characters/],
      ['bad key!', /"bad key!" is not a valid label key/],
      ['-version', /starting and ending with a letter or digit/],
      ['x'.repeat(64), /1-63 characters/],
      ['Example.com/track', /the prefix before '\/' must be a DNS subdomain/],
      ['/track', /the prefix before '\/' must be a DNS subdomain/],
      ['example.com/', /the name part/],
      // Valid keys that something else writes on the pods: subsets keyed on them would select no pod.
      ['pod-template-hash', /^--track-label "pod-template-hash" is set by the Deployment controller on every pod \(to the hash of its template\), so it cannot tell stable from canary pods; use a key of your own, e\.g\. version \(the default\)$/],
      ['kube-canary.io/role', /^--track-label "kube-canary\.io\/role" is one of kube-canary's own label keys \(kube-canary\.io\/\.\.\.\); use a key of your own/],
      ['kube-canary.io/enabled', /is one of kube-canary's own label keys/],
    ];
    for (const [value, message] of bad) {
      it(`refuses ${JSON.stringify(value)}, saying what a label key is`, () => {
        assert.throws(() => parse(value), (e: unknown) => e instanceof InvalidArgumentError && message.test(e.message));
      });
    }
  });

  describe('--namespace (kube-canary\'s own namespace: it names the progressor\'s identity)', () => {
    const parse = namespaceOption('--namespace');
    for (const ok of ['kube-canary', 'ops', 'a', '9ops', 'x'.repeat(63)]) {
      it(`accepts ${ok.length > 20 ? `${ok.length} characters` : ok}`, () => assert.equal(parse(ok), ok));
    }
    for (const bad of ['', 'Bad_NS', 'kube-canary ', '-ops', 'ops-', 'a.b', 'x'.repeat(64)]) {
      it(`refuses ${JSON.stringify(bad.length > 20 ? `${bad.length} characters` : bad)}, saying what a namespace name is`, () => {
        assert.throws(
          () => parse(bad),
          (e: unknown) => e instanceof InvalidArgumentError && e.message === `--namespace ${JSON.stringify(bad)} is not a namespace name: lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters, e.g. --namespace kube-canary`,
        );
      });
    }
  });

  describe('--prometheus-url (an http(s) URL, credentials never quoted)', () => {
    const parse = httpUrlOption('--prometheus-url', 'http://prometheus.istio-system:9090');
    for (const ok of ['http://127.0.0.1:9090', 'https://prom.example/prefix/', 'http://u:p%40ss@prom:9090', 'http://u:50%25off@prom:9090']) {
      it(`accepts ${ok}`, () => assert.equal(parse(ok), ok));
    }
    const bad: Array<[string, RegExp]> = [
      // No scheme: "prometheus.istio-system:" would be taken as the scheme, and every check fail with "unknown scheme".
      ['prometheus.istio-system:9090', /^--prometheus-url "prometheus\.istio-system:9090" is not an http\(s\) URL; write it with its scheme, e.g. --prometheus-url http:\/\/prometheus\.istio-system:9090$/],
      ['127.0.0.1:9090', /"127\.0\.0\.1:9090" is not an http\(s\) URL/],
      ['ftp://prom/', /"ftp:\/\/prom\/" is not an http\(s\) URL/],
      ['', /"" is not an http\(s\) URL/],
      ['admin:s3cret@prom:9090', /"\*\*\*@prom:9090" is not an http\(s\) URL/],
      ['http://admin:50%off@prom:9090', /"http:\/\/\*\*\*@prom:9090": the password in the URL has a "%" that is not a percent-escape \(%XX of UTF-8\); write a literal % as %25$/],
    ];
    for (const [value, message] of bad) {
      it(`refuses ${JSON.stringify(value)}, saying why, without its credentials`, () => {
        assert.throws(() => parse(value), (e: unknown) => e instanceof InvalidArgumentError && message.test(e.message) && !/s3cret|50%off|admin/.test(e.message));
      });
    }
  });

  describe('--progressor-user (must name somebody)', () => {
    const parse = nonEmptyListOption('--progressor-user');
    it('splits and trims', () => assert.deepEqual(parse(' a , b,,'), ['a', 'b']));
    for (const value of ['', ' , ', ',']) {
      it(`refuses ${JSON.stringify(value)}`, () => {
        assert.throws(() => parse(value), (e: unknown) => e instanceof InvalidArgumentError && /--progressor-user .* names nobody; give at least one comma-separated value/.test(e.message));
      });
    }
  });

  describe('duration flags (bounded)', () => {
    const parse = durationOption('--lease-duration', seconds(1, 600, '15s'));
    it('reads a duration inside the bounds', () => {
      assert.equal(parse('15s'), 15_000);
      assert.equal(parse('1s'), 1_000);
      assert.equal(parse('10m'), 600_000);
    });
    for (const [value, message] of [
      ['0s', /--lease-duration "0s" is shorter than 1s; use a duration from 1s to 10m, e.g. "15s"/],
      ['99999h', /is longer than 10m; use a duration from 1s to 10m/],
      ['soon', /--lease-duration/],
    ] as const) {
      it(`refuses ${value}, naming the flag and the range`, () => {
        assert.throws(() => parse(value), (e: unknown) => e instanceof InvalidArgumentError && message.test(e.message));
      });
    }
  });
});
