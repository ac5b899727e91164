/**
 * How KubeHttp reaches the API server when the client library authenticates: a kubeconfig's
 * proxy-url (an HTTP CONNECT proxy, a SOCKS5 proxy), basic auth, and client certificates an exec
 * plugin rotates; and through HTTPS_PROXY when there is no proxy-url. Real TLS, a real proxy and
 * an HTTPS stand-in for the API server, all on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import dns from 'node:dns';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import YAML from 'yaml';
import { generateCerts } from '../../src/certs/generate.js';
import { CredentialsError, loadCredentials } from '../../src/kube/credentials.js';
import { KubeHttp } from '../../src/kube/http.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const port = (s: net.Server) => (s.address() as AddressInfo).port;
const listen = (s: net.Server) => new Promise<void>((r) => s.listen(0, '127.0.0.1', r));

async function waitUntil(f: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300 && !f(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(f(), what);
}

describe('kube http: proxies, basic auth and rotating client certificates (client library credentials)', function () {
  this.timeout(20_000);
  // kube.test: a name only the test proxy resolves (HTTPS_PROXY is never used for a loopback address).
  const serving = generateCerts({ hosts: ['127.0.0.1', 'kube.test'], validDays: 1, keyBits: 1024 });
  // Leaf pairs used as client certificates; the stand-in tells them apart by CN.
  const clientA = generateCerts({ hosts: ['client-a'], validDays: 1, keyBits: 1024 });
  const clientB = generateCerts({ hosts: ['client-b'], validDays: 1, keyBits: 1024 });
  let dir: string;
  let api: https.Server;
  /** What the stand-in saw, per request. */
  const seen: Array<{ url: string; authorization?: string; client?: string; socket: TLSSocket }> = [];
  const watches: http.ServerResponse[] = [];
  let proxy: http.Server;
  const connects: Array<{ target: string; socket: net.Socket; authorization?: string }> = [];
  const open = new Set<net.Socket>();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kc-conn-'));
    api = https.createServer({ cert: serving.cert, key: serving.key, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      const socket = req.socket as TLSSocket;
      const cn = socket.getPeerCertificate().subject?.CN;
      seen.push({ url: req.url!, ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}), ...(cn ? { client: String(cn) } : {}), socket });
      if (req.url!.includes('watch=true')) {
        res.writeHead(200, { 'content-type': 'application/json' }).flushHeaders();
        return void watches.push(res);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"kind":"NamespaceList","items":[]}');
    });
    // An HTTP proxy that only tunnels (CONNECT), as corporate proxies do for https.
    proxy = http.createServer((_req, res) => res.writeHead(405).end());
    proxy.on('connect', (req: http.IncomingMessage, client: net.Socket) => {
      connects.push({ target: req.url!, socket: client, ...(req.headers['proxy-authorization'] ? { authorization: req.headers['proxy-authorization'] } : {}) });
      const [host, p] = req.url!.split(':');
      const upstream = net.connect(Number(p), host === 'kube.test' ? '127.0.0.1' : host, () => {
        client.write('HTTP/1.1 200 Connection established\r\n\r\n');
        upstream.pipe(client).pipe(upstream);
      });
      for (const s of [client, upstream]) {
        open.add(s);
        s.on('close', () => open.delete(s));
        s.on('error', () => {});
      }
    });
    await Promise.all([listen(api), listen(proxy)]);
  });

  after(async () => {
    for (const w of watches) w.destroy();
    for (const s of open) s.destroy();
    api.closeAllConnections();
    proxy.closeAllConnections();
    await Promise.all([new Promise((r) => api.close(r)), new Promise((r) => proxy.close(r))]);
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    seen.length = 0;
    connects.length = 0;
  });

  const kubeconfig = (name: string, cluster: Record<string, unknown>, user: Record<string, unknown>) => {
    const file = join(dir, name);
    writeFileSync(
      file,
      YAML.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        'current-context': 'c',
        contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
        clusters: [{ name: 'c', cluster: { server: `https://127.0.0.1:${port(api)}`, 'certificate-authority-data': b64(serving.caCert), ...cluster } }],
        users: [{ name: 'u', user }],
      }),
    );
    return file;
  };

  it("goes through the kubeconfig's proxy-url with its basic auth, requests on one kept-alive tunnel, a watch on its own", async () => {
    const creds = await loadCredentials(kubeconfig('proxied', { 'proxy-url': `http://127.0.0.1:${port(proxy)}` }, { username: 'alice', password: 's3cret' }), {});
    assert.match(creds.source, /client library KubeConfig, because .* uses cluster proxy-url, user username, user password/);
    const client = new KubeHttp(creds);
    await client.request('GET', '/api/v1/namespaces');
    await client.request('GET', '/api/v1/namespaces');
    const ctrl = new AbortController();
    const events: unknown[] = [];
    const watching = client.watch('/api/v1/namespaces', {}, (e) => events.push(e), ctrl.signal).catch(() => {});
    await waitUntil(() => watches.length === 1, 'the watch reached the API server');
    watches[0]!.write(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'n' } } })}\n`);
    await waitUntil(() => events.length === 1, 'the watch event came back through the proxy');
    ctrl.abort();
    await watching;

    const basic = `Basic ${b64('alice:s3cret')}`;
    assert.deepEqual(seen.map((s) => [s.url.split('?')[0], s.authorization]), [['/api/v1/namespaces', basic], ['/api/v1/namespaces', basic], ['/api/v1/namespaces', basic]]);
    assert.deepEqual(connects.map((c) => c.target), [`127.0.0.1:${port(api)}`, `127.0.0.1:${port(api)}`], 'one tunnel for both requests, one for the watch');
  });

  it('goes through a SOCKS5 proxy-url', async () => {
    const targets: string[] = [];
    const socks = net.createServer((c) => {
      open.add(c);
      c.on('close', () => open.delete(c));
      c.on('error', () => {});
      c.once('data', () => {
        c.write(Buffer.from([5, 0])); // version 5, no authentication
        c.once('data', (req: Buffer) => {
          // VER CMD RSV ATYP ADDR PORT; the agent resolves 127.0.0.1 itself, so ATYP is 1 (IPv4).
          const host = [...req.subarray(4, 8)].join('.');
          const p = req.readUInt16BE(8);
          targets.push(`${host}:${p}`);
          const upstream = net.connect(p, host, () => {
            c.write(Buffer.from([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
            upstream.pipe(c).pipe(upstream);
          });
          upstream.on('error', () => c.destroy());
          c.on('close', () => upstream.destroy());
        });
      });
    });
    await listen(socks);
    try {
      const creds = await loadCredentials(kubeconfig('socks', { 'proxy-url': `socks5://127.0.0.1:${port(socks)}` }, { token: 'via-socks' }), {});
      assert.deepEqual(await new KubeHttp(creds).request('GET', '/api/v1/namespaces'), { kind: 'NamespaceList', items: [] });
      assert.deepEqual(targets, [`127.0.0.1:${port(api)}`]);
      assert.equal(seen[0]?.authorization, 'Bearer via-socks');
      // The server's certificate is still checked: not for a name it does not carry.
      const misnamed = await loadCredentials(kubeconfig('socks-misnamed', { 'proxy-url': `socks5://127.0.0.1:${port(socks)}`, 'tls-server-name': 'other.example' }, { token: 't' }), {});
      await assert.rejects(new KubeHttp(misnamed).request('GET', '/api/v1/namespaces'), /ERR_TLS_CERT_ALTNAME_INVALID.*Host: other\.example\./);
    } finally {
      for (const c of open) c.destroy();
      await new Promise((r) => socks.close(r));
    }
  });

  it('a proxy that never completes the tunnel: the request fails at its deadline, waiting for a connection, and the CONNECT is closed', async () => {
    const stalled: net.Socket[] = [];
    let closed = 0;
    const silent = net.createServer((s) => {
      stalled.push(s);
      s.on('close', () => (closed += 1));
      s.resume(); // reads (so it sees the client close) and never answers
    });
    await listen(silent);
    try {
      const creds = await loadCredentials(kubeconfig('stalled', { 'proxy-url': `http://127.0.0.1:${port(silent)}` }, { token: 't' }), {});
      const started = Date.now();
      const err = await new KubeHttp(creds).request('GET', '/api/v1/namespaces', { timeoutMs: 300 }).then(
        () => undefined,
        (e: Error) => e,
      );
      assert.equal(err?.message, 'GET /api/v1/namespaces: no answer within 300 ms: still waiting for a connection to the API server');
      assert.ok(Date.now() - started < 1500, `failed after ${Date.now() - started} ms`);
      await waitUntil(() => stalled.length === 1 && closed === 1, `the pending CONNECT was closed: ${stalled.length} connections, ${closed} closed`);
      assert.equal(seen.length, 0, 'nothing went around the proxy');
    } finally {
      for (const s of stalled) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it("an exec plugin's next client certificate is used from the next request on; a watch on the old one goes on until it ends", async () => {
    const current = join(dir, 'current-pair.json');
    const use = (pair: { cert: string; key: string }) => writeFileSync(current, JSON.stringify(pair));
    use(clientA);
    // No expirationTimestamp: the library runs the plugin for every request, as for a certificate about to expire.
    const script = `const p = JSON.parse(require('fs').readFileSync(${JSON.stringify(current)}, 'utf8')); process.stdout.write(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { clientCertificateData: p.cert, clientKeyData: p.key } }))`;
    const exec = { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: ['-e', script], interactiveMode: 'Never' };
    const client = new KubeHttp(await loadCredentials(kubeconfig('exec', {}, { exec }), {}));

    await client.request('GET', '/api/v1/namespaces');
    const ctrl = new AbortController();
    const events: unknown[] = [];
    const watching = client.watch('/api/v1/namespaces', {}, (e) => events.push(e), ctrl.signal).catch(() => {});
    await waitUntil(() => watches.length === 2, 'the watch reached the API server');
    use(clientB);
    await client.request('GET', '/api/v1/namespaces');
    assert.deepEqual(seen.map((s) => s.client), ['client-a', 'client-a', 'client-b']);

    const oldConnections = seen.filter((s) => s.client === 'client-a').map((s) => s.socket);
    watches[1]!.write(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'n' } } })}\n`);
    await waitUntil(() => events.length === 1, 'the watch opened with the old certificate still delivers');
    ctrl.abort();
    await watching;
    await waitUntil(() => oldConnections.every((s) => s.destroyed || s.readyState === 'closed'), 'the connections made with the old certificate are closed once unused');
  });

  describe('without a proxy-url: HTTPS_PROXY and NO_PROXY, as client-go', () => {
    // Lookups of kube.test made by this process, i.e. by KubeHttp going around the proxy; they
    // get 127.0.0.1, so such a request still reaches the stand-in and the test shows where it went.
    const lookedUp: string[] = [];
    const realLookup = dns.lookup;
    before(() => {
      dns.lookup = ((host: string, ...rest: unknown[]) => {
        if (host === 'kube.test') lookedUp.push(host);
        return (realLookup as (...a: unknown[]) => unknown)(host === 'kube.test' ? '127.0.0.1' : host, ...rest);
      }) as typeof dns.lookup;
    });
    after(() => {
      dns.lookup = realLookup;
    });
    beforeEach(() => {
      lookedUp.length = 0;
    });
    const viaName = (name: string, cluster: Record<string, unknown> = {}) => kubeconfig(name, { server: `https://kube.test:${port(api)}`, ...cluster }, { token: 'env-proxied' });

    it('goes through HTTPS_PROXY with its basic auth; the start line names it without the password', async () => {
      const creds = await loadCredentials(viaName('env-proxy'), { HTTPS_PROXY: `http://corp:pa%3Ass@127.0.0.1:${port(proxy)}`, NO_PROXY: 'other.test,10.0.0.0/8' });
      assert.equal(creds.proxy, `http://127.0.0.1:${port(proxy)} (HTTPS_PROXY)`);
      assert.deepEqual(await new KubeHttp(creds).request('GET', '/api/v1/namespaces'), { kind: 'NamespaceList', items: [] });
      assert.deepEqual(connects.map((c) => [c.target, c.authorization]), [[`kube.test:${port(api)}`, `Basic ${b64('corp:pa:ss')}`]]);
      assert.equal(seen[0]?.authorization, 'Bearer env-proxied');
      assert.deepEqual(lookedUp, [], 'the proxy resolved the name, not the progressor');
    });

    it('goes around it when NO_PROXY lists the server', async () => {
      const creds = await loadCredentials(viaName('env-no-proxy'), { HTTPS_PROXY: `http://127.0.0.1:${port(proxy)}`, no_proxy: 'localhost,.test' });
      assert.equal(creds.proxy, 'none: HTTPS_PROXY is set, but the server is listed in no_proxy');
      assert.deepEqual(await new KubeHttp(creds).request('GET', '/api/v1/namespaces'), { kind: 'NamespaceList', items: [] });
      assert.deepEqual(connects, []);
      assert.deepEqual(lookedUp, ['kube.test'], 'connected directly');
      assert.equal(seen[0]?.authorization, 'Bearer env-proxied');
    });

    it("a kubeconfig's proxy-url wins over HTTPS_PROXY", async () => {
      let envProxyConnections = 0;
      const envProxy = net.createServer((s) => {
        envProxyConnections += 1;
        s.destroy();
      });
      await listen(envProxy);
      try {
        const creds = await loadCredentials(viaName('env-and-proxy-url', { 'proxy-url': `http://127.0.0.1:${port(proxy)}` }), { HTTPS_PROXY: `http://127.0.0.1:${port(envProxy)}` });
        assert.equal(creds.proxy, `http://127.0.0.1:${port(proxy)} (the cluster's proxy-url)`);
        await new KubeHttp(creds).request('GET', '/api/v1/namespaces');
        assert.deepEqual(connects.map((c) => c.target), [`kube.test:${port(api)}`]);
        assert.equal(envProxyConnections, 0);
        assert.deepEqual(lookedUp, []);
      } finally {
        await new Promise((r) => envProxy.close(r));
      }
    });
  });

  it('refuses a proxy-url that is not an http, https or socks URL at start, naming the field and not quoting it', async () => {
    for (const bad of ['proxy.example:3128', 'ftp://user:hunter2@proxy.example:21']) {
      await assert.rejects(
        loadCredentials(kubeconfig('bad-proxy', { 'proxy-url': bad }, { token: 't' }), {}),
        (e: Error) => e instanceof CredentialsError && /the cluster's proxy-url is not an http:\/\/, https:\/\/ or socks5:\/\/ URL \(e\.g\. http:\/\/proxy\.example:3128\); fix it in the kubeconfig$/.test(e.message) && !e.message.includes('hunter2'),
      );
    }
  });
});
