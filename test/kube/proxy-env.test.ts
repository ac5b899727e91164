/** The proxy the environment gives, with the semantics of Go's http.ProxyFromEnvironment (golang.org/x/net/http/httpproxy). */
import assert from 'node:assert/strict';
import { type EnvProxy, proxyFromEnv } from '../../src/kube/proxy-env.js';

const P = 'http://proxy.example:3128/';

describe('kube/proxy-env: proxyFromEnv', () => {
  const cases: Array<[string, string, Record<string, string>, EnvProxy | undefined]> = [
    // [what, server, env, expected]
    ['no variable', 'https://kube.example:6443', {}, undefined],
    ['HTTPS_PROXY for an https server', 'https://kube.example:6443', { HTTPS_PROXY: P }, { variable: 'HTTPS_PROXY', url: P }],
    ['https_proxy', 'https://kube.example:6443', { https_proxy: P }, { variable: 'https_proxy', url: P }],
    ['upper case first, as Go 1.26 reads them', 'https://kube.example:6443', { HTTPS_PROXY: P, https_proxy: 'http://other:1' }, { variable: 'HTTPS_PROXY', url: P }],
    ['an empty value counts as unset', 'https://kube.example:6443', { HTTPS_PROXY: '', https_proxy: P }, { variable: 'https_proxy', url: P }],
    ['HTTP_PROXY is not for an https server', 'https://kube.example:6443', { HTTP_PROXY: P }, undefined],
    ['HTTP_PROXY for an http server', 'http://kube.example:8080', { HTTP_PROXY: P, HTTPS_PROXY: 'http://other:1' }, { variable: 'HTTP_PROXY', url: P }],
    ['http_proxy', 'http://kube.example:8080', { http_proxy: P }, { variable: 'http_proxy', url: P }],
    ['no scheme means http://', 'https://kube.example', { HTTPS_PROXY: 'proxy.example:3128' }, { variable: 'HTTPS_PROXY', url: P }],
    ['no scheme, an IP address', 'https://kube.example', { HTTPS_PROXY: '10.1.1.1:3128' }, { variable: 'HTTPS_PROXY', url: 'http://10.1.1.1:3128/' }],
    ['credentials and an https proxy are kept', 'https://kube.example', { HTTPS_PROXY: 'https://u:p%40ss@proxy.example' }, { variable: 'HTTPS_PROXY', url: 'https://u:p%40ss@proxy.example/' }],
    ['socks5', 'https://kube.example', { HTTPS_PROXY: 'socks5://proxy.example:1080' }, { variable: 'HTTPS_PROXY', url: 'socks5://proxy.example:1080' }],
    // Loopback is never proxied, whatever NO_PROXY says.
    ['localhost', 'https://localhost:6443', { HTTPS_PROXY: P }, { variable: 'HTTPS_PROXY', exempt: 'loopback' }],
    ['127.0.0.0/8', 'https://127.1.2.3:6443', { HTTPS_PROXY: P }, { variable: 'HTTPS_PROXY', exempt: 'loopback' }],
    ['::1', 'https://[::1]:6443', { HTTPS_PROXY: P }, { variable: 'HTTPS_PROXY', exempt: 'loopback' }],
    ['::ffff:127.0.0.1', 'https://[::ffff:127.0.0.1]:6443', { HTTPS_PROXY: P }, { variable: 'HTTPS_PROXY', exempt: 'loopback' }],
    ['a name that resolves to loopback is not looked up', 'https://localhost.example:6443', { HTTPS_PROXY: P }, { variable: 'HTTPS_PROXY', url: P }],
    // NO_PROXY
    ['*', 'https://kube.example', { HTTPS_PROXY: P, NO_PROXY: '*' }, { variable: 'HTTPS_PROXY', exempt: 'NO_PROXY' }],
    ['no_proxy', 'https://kube.example', { HTTPS_PROXY: P, no_proxy: 'kube.example' }, { variable: 'HTTPS_PROXY', exempt: 'no_proxy' }],
    ['NO_PROXY before no_proxy', 'https://kube.example', { HTTPS_PROXY: P, NO_PROXY: 'other.example', no_proxy: 'kube.example' }, { variable: 'HTTPS_PROXY', url: P }],
    ['a name matches itself', 'https://kube.example', { HTTPS_PROXY: P, NO_PROXY: 'a.test, kube.example ,b.test' }, { variable: 'HTTPS_PROXY', exempt: 'NO_PROXY' }],
    ['case does not matter', 'https://KUBE.example', { HTTPS_PROXY: P, NO_PROXY: 'Kube.Example' }, { variable: 'HTTPS_PROXY', exempt: 'NO_PROXY' }],
    ['a name matches its subdomains', 'https://api.kube.example', { HTTPS_PROXY: P, NO_PROXY: 'kube.example' }, { variable: 'HTTPS_PROXY', exempt: 'NO_PROXY' }],
    ['only at a dot', 'https://notkube.example', { HTTPS_PROXY: P, NO_PROXY: 'kube.example' }, { variable: 'HTTPS_PROXY', url: P }],
    ['.name matches subdomains', 'https://api.kube.example', { HTTPS_PROXY: P, NO_PROXY: '.kube.example' }, { variable: 'HTTPS_PROXY', exempt: 'NO_PROXY' }],
    ['.name does not match the name itself', 'https://kube.example', { HTTPS_PROXY: P, NO_PROXY: '.kube.example' }, { variable: 'HTTPS_PROXY', url: P }],
    ['*.name is .name', 'https://api.kube.example', { HTTPS_PROXY: P, NO_PROXY: '*.kube.example' }, { variable: 'HTTPS_PROXY', exempt: 'NO_PROXY' }],
    ['*.name does not match the name itself', 'https://kube.example', { HTTPS_PROXY: P, NO_PROXY: '*.kube.example' }, { variable: 'HTTPS_PROXY', url: P }],
    ['a name with the port', 'https://kube.example:6443', { HTTPS_PROXY: P, NO_PROXY: 'kube.example:6443' }, { variable: 'HTTPS_PROXY', exempt: 'NO_PROXY' }],
    ['a name with another port', 'https://kube.example:6443', { HTTPS_PROXY: P, NO_PROXY: 'kube.example:443' }, { variable: 'HTTPS_PROXY', url: P }],
    ['the default port of https is 443', 'https://kube.example', { HTTPS_PROXY: P, NO_PROXY: 'kube.example:443' }, { variable: 'HTTPS_PROXY', exempt: 'NO_PROXY' }],
    ['an internationalized name', 'https://api.bücher.example', { HTTPS_PROXY: P, NO_PROXY: 'bücher.example' }, { variable: 'HTTPS_PROXY', exempt: 'NO_PROXY' }],
    ['an IP address', 'https://10.96.0.1', { HTTPS_PROXY: P, NO_PROXY: '10.96.0.1' }, { variable: 'HTTPS_PROXY', exempt: 'NO_PROXY' }],
    ['another IP address', 'https://10.96.0.1', { HTTPS_PROXY: P, NO_PROXY: '10.96.0.10' }, { variable: 'HTTPS_PROXY', url: P }],
    ['an IP address with the port', 'https://10.96.0.1', { HTTPS_PROXY: P, NO_PROXY: '10.96.0.1:443' }, { variable: 'HTTPS_PROXY', exempt: 'NO_PROXY' }],
    ['an IP address with another port', 'https://10.96.0.1', { HTTPS_PROXY: P, NO_PROXY: '10.96.0.1:6443' }, { variable: 'HTTPS_PROXY', url: P }],
    ['a CIDR range', 'https://10.96.0.1', { HTTPS_PROXY: P, NO_PROXY: '192.168.0.0/16,10.96.0.0/12' }, { variable: 'HTTPS_PROXY', exempt: 'NO_PROXY' }],
    ['outside the range', 'https://10.112.0.1', { HTTPS_PROXY: P, NO_PROXY: '10.96.0.0/12' }, { variable: 'HTTPS_PROXY', url: P }],
    ['an IPv6 address', 'https://[fd00::1]:6443', { HTTPS_PROXY: P, NO_PROXY: 'fd00::1' }, { variable: 'HTTPS_PROXY', exempt: 'NO_PROXY' }],
    ['an IPv6 address with the port', 'https://[fd00::1]:6443', { HTTPS_PROXY: P, NO_PROXY: '[fd00::1]:6443' }, { variable: 'HTTPS_PROXY', exempt: 'NO_PROXY' }],
    ['an IPv4 address as IPv6 is the same address, as in Go', 'https://10.0.0.1', { HTTPS_PROXY: P, NO_PROXY: '::ffff:10.0.0.1' }, { variable: 'HTTPS_PROXY', exempt: 'NO_PROXY' }],
    ['an IPv6 range', 'https://[fd00::1]:6443', { HTTPS_PROXY: P, NO_PROXY: 'fd00::/8' }, { variable: 'HTTPS_PROXY', exempt: 'NO_PROXY' }],
    ['a range does not match a name (it is not resolved)', 'https://kube.example', { HTTPS_PROXY: P, NO_PROXY: '0.0.0.0/0' }, { variable: 'HTTPS_PROXY', url: P }],
    ['a name does not match an IP address', 'https://10.0.0.1', { HTTPS_PROXY: P, NO_PROXY: '0.1' }, { variable: 'HTTPS_PROXY', url: P }],
    ['empty and malformed entries are skipped', 'https://kube.example', { HTTPS_PROXY: P, NO_PROXY: ',, :443,[::1],10.0.0.0/33' }, { variable: 'HTTPS_PROXY', url: P }],
  ];
  for (const [what, server, env, expected] of cases) {
    it(what, () => assert.deepEqual(proxyFromEnv(new URL(server), env), expected));
  }

  it('refuses a proxy it would use that is no http, https or socks5 URL, naming the variable and not quoting it', () => {
    for (const bad of ['ftp://user:hunter2@proxy.example:21', 'http://proxy.example:99999', 'socks4://hunter2@proxy.example']) {
      assert.throws(
        () => proxyFromEnv(new URL('https://kube.example'), { https_proxy: bad }),
        (e: Error) => e.message === 'https_proxy is not an http://, https:// or socks5:// URL, nor a host:port (e.g. http://proxy.example:3128); fix it, or unset it to connect directly' && !e.message.includes('hunter2'),
        bad,
      );
    }
    // Not used, so not checked: the server is exempt.
    assert.deepEqual(proxyFromEnv(new URL('https://kube.example'), { HTTPS_PROXY: 'ftp://proxy', NO_PROXY: 'kube.example' }), { variable: 'HTTPS_PROXY', exempt: 'NO_PROXY' });
  });
});
