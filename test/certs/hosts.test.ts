import assert from 'node:assert/strict';
import { checkHosts, hostProblem } from '../../src/certs/hosts.js';

describe('certs: which hosts may become SANs', () => {
  it('accepts IPv4, IPv6, DNS names and a leading wildcard label', () => {
    for (const h of ['127.0.0.1', '10.0.0.255', '::1', 'fd00::1:2', '::ffff:10.0.0.1', 'localhost', 'kube-canary-webhook.kube-canary.svc', 'A-1.example', '*.kube-canary.svc', `${'a'.repeat(63)}.com`]) {
      assert.equal(hostProblem(h), undefined, h);
    }
  });

  it('refuses what looks like IPv4 but is not (all-numeric last label)', () => {
    for (const h of ['256.1.1.1', '1.2.3', '127.000.0.1', '1.2.3.4.5', 'foo.1', '*.1.2.3']) assert.match(hostProblem(h) ?? '', /looks like an IPv4 address/, h);
  });

  it('refuses invalid IPv6, brackets and zones', () => {
    for (const h of ['::g', '1::2::3', 'fe80::1%eth0']) assert.match(hostProblem(h) ?? '', /not a valid IPv6 address/, h);
  });

  it('says what is wrong with a URL, a port, brackets or a trailing dot instead of calling it a bad IPv6 address', () => {
    assert.equal(hostProblem('https://foo.svc'), 'is a URL; give the host alone (no scheme, port or path), e.g. kube-canary-webhook.kube-canary.svc');
    assert.equal(hostProblem('localhost:8443'), 'has a port (:8443); give the host alone, e.g. localhost');
    assert.equal(hostProblem('127.0.0.1:8443'), 'has a port (:8443); give the host alone, e.g. 127.0.0.1');
    assert.equal(hostProblem('[::1]'), 'has brackets; write an IPv6 address without them, e.g. ::1');
    assert.equal(hostProblem('[::1]:8443'), 'has brackets; write an IPv6 address without them, e.g. ::1');
    assert.equal(hostProblem('foo.svc.'), 'ends with a dot; write the name without it, foo.svc');
  });

  it('refuses labels over 63 characters and names over 253', () => {
    assert.match(hostProblem(`${'a'.repeat(70)}.com`) ?? '', /label of 70 characters, more than the 63/);
    const long = Array.from({ length: 5 }, () => 'a'.repeat(60)).join('.');
    assert.match(hostProblem(long) ?? '', /is 304 characters long, more than the 253/);
  });

  it('refuses bad characters, empty labels, hyphens at the ends and wildcards elsewhere', () => {
    for (const [h, label] of [['a_b', 'a_b'], ['a..b', ''], ['-a.b', '-a'], ['a-.b', 'a-'], ['a.*.b', '*'], ['*', '*'], ['**.a', '**'], ['ex ample', 'ex ample']]) {
      assert.equal(hostProblem(h!), `has the invalid DNS label ${JSON.stringify(label)}`, h);
    }
  });

  it('the error names the bad host and what is allowed', () => {
    assert.throws(() => checkHosts(['127.0.0.1', '256.1.1.1']), (e: Error) => {
      assert.match(e.message, /^--hosts: "256\.1\.1\.1" looks like an IPv4 address but is not one; allowed: an IPv4 address .*IPv6.*DNS name/);
      return true;
    });
    assert.throws(() => checkHosts([]), /no hosts given/);
  });
});
