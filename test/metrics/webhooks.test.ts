import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { generateCerts } from '../../src/certs/generate.js';
import type { WebhookGate } from '../../src/config/analysis.js';
import type { WebhookPayload } from '../../src/metrics/provider.js';
import { HttpGateRunner, bodySnippet } from '../../src/metrics/webhooks.js';
import { signalHolds, watchListenerWarnings } from '../support/signal.js';

const payload: WebhookPayload = {
  name: 'review',
  namespace: 'test',
  phase: 'Progressing',
  checksum: '5f2c9a1',
  metadata: { cmd: 'hey -z 1m http://review.test/', token: 's3cr3t-t0ken' },
};

describe('webhooks: HttpGateRunner against a real HTTP server on 127.0.0.1', () => {
  let server: Server;
  let base = '';
  let received: Array<{ method?: string; url?: string; headers: IncomingHttpHeaders; body: string }> = [];
  let respond: (url: string) => { status: number; body?: string; delayMs?: number; headers?: Record<string, string> } = () => ({ status: 200 });
  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push({ method: req.method, url: req.url, headers: req.headers, body });
        const r = respond(req.url ?? '');
        const send = () => !res.destroyed && res.writeHead(r.status, r.headers ?? {}).end(r.body ?? '');
        if (r.delayMs) setTimeout(send, r.delayMs);
        else send();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  beforeEach(() => (received = []));
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const gate = (over: Partial<WebhookGate> = {}): WebhookGate => ({ name: 'load-test', type: 'rollout', url: `${base}/hook`, timeoutMs: 2000, metadata: payload.metadata, ...over });

  it('POSTs Flagger\'s loadtester payload as JSON and passes on 2xx', async () => {
    for (const status of [200, 202, 204]) {
      respond = () => ({ status });
      const r = await new HttpGateRunner().run(gate(), payload);
      assert.equal(r.passed, true, r.message);
      assert.equal(r.name, 'load-test');
    }
    const got = received[0]!;
    assert.equal(got.method, 'POST');
    assert.equal(got.url, '/hook');
    assert.equal(got.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(got.body), { name: 'review', namespace: 'test', phase: 'Progressing', checksum: '5f2c9a1', metadata: payload.metadata });
  });

  it('fails on any other status, naming the URL and status, masking metadata values echoed in the body', async () => {
    respond = () => ({ status: 500, body: 'command failed: hey -z 1m http://review.test/ with s3cr3t-t0ken' });
    const r = await new HttpGateRunner().run(gate({ url: `${base}/hook?apikey=zzz` }), payload);
    assert.equal(r.passed, false);
    assert.match(r.message, new RegExp(`webhook load-test \\(rollout\\) ${base}/hook: HTTP 500`));
    assert.doesNotMatch(r.message, /s3cr3t|apikey|zzz|hey -z/);
    assert.match(r.message, /command failed: \*\*\* with \*\*\*/);
    for (const status of [400, 403, 404, 503]) {
      respond = () => ({ status });
      const x = await new HttpGateRunner().run(gate(), payload);
      assert.equal(x.passed, false);
      assert.match(x.message, new RegExp(`HTTP ${status}`));
    }
  });

  it('does not follow redirects (a 3xx fails)', async () => {
    respond = (url) => (url === '/hook' ? { status: 307, headers: { location: `${base}/elsewhere` } } : { status: 200 });
    const r = await new HttpGateRunner().run(gate(), payload);
    assert.equal(r.passed, false);
    assert.match(r.message, /HTTP 307 redirect/);
    assert.equal(received.length, 1);
  });

  it('fails after the gate\'s timeout', async () => {
    respond = () => ({ status: 200, delayMs: 1500 });
    const t0 = Date.now();
    const r = await new HttpGateRunner().run(gate({ timeoutMs: 100 }), payload);
    assert.equal(r.passed, false);
    assert.match(r.message, /timeout of 100ms/);
    assert.ok(Date.now() - t0 < 1000);
  });

  it('fails on a network error, naming the URL without credentials', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const r = await new HttpGateRunner().run(gate({ url: `http://user:pw@127.0.0.1:${port}/x` }), payload);
    assert.equal(r.passed, false);
    assert.match(r.message, new RegExp(`http://127.0.0.1:${port}/x: unreachable: ECONNREFUSED`));
    assert.doesNotMatch(r.message, /pw/);
  });

  it('an HTTPS gate with a certificate the progressor does not trust fails naming the certificate and the fix, not "unreachable"', async () => {
    const pki = generateCerts({ hosts: ['127.0.0.1'], validDays: 1, keyBits: 1024 });
    const tls = createHttpsServer({ key: pki.key, cert: pki.cert }, (req, res) => void req.resume().on('end', () => res.end('ok')));
    await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
    try {
      const url = `https://127.0.0.1:${(tls.address() as AddressInfo).port}/gate`;
      const r = await new HttpGateRunner().run(gate({ url }), payload);
      assert.equal(r.passed, false);
      assert.equal(
        r.message,
        `webhook load-test (rollout) ${url}: its TLS certificate is not accepted: UNABLE_TO_VERIFY_LEAF_SIGNATURE (unable to verify the first certificate); if it is signed by your own CA, give the progressor that CA (environment variable NODE_EXTRA_CA_CERTS=/path/to/ca.pem); if it has expired or names another host, fix the certificate`,
      );
    } finally {
      tls.closeAllConnections();
      tls.close();
    }
  });

  it('sends URL credentials as basic auth, not in the URL', async () => {
    respond = () => ({ status: 200 });
    const r = await new HttpGateRunner().run(gate({ url: base.replace('http://', 'http://ci:pw@') + '/hook' }), payload);
    assert.equal(r.passed, true, r.message);
    assert.equal(received[0]!.headers.authorization, `Basic ${Buffer.from('ci:pw').toString('base64')}`);
  });

  it('a password with a "%" that is no percent-escape fails the gate saying so (an object admitted before the check), never throws, never shows it', async () => {
    const r = await new HttpGateRunner().run(gate({ url: base.replace('http://', 'http://ci:50%off@') + '/hook' }), payload);
    assert.equal(r.passed, false);
    assert.equal(r.message, `webhook load-test (rollout) ${base}/hook: the password in the URL has a "%" that is not a percent-escape (%XX of UTF-8); write a literal % as %25`);
    assert.equal(received.length, 0);
  });

  it('calls given the progressor\'s one long-lived signal leave nothing on it, and it still cancels them', async () => {
    respond = () => ({ status: 200 });
    const runner = new HttpGateRunner();
    const lifetime = new AbortController();
    const warnings = watchListenerWarnings();
    for (let i = 0; i < 30; i++) {
      const rs = await Promise.all([runner.run(gate(), payload, lifetime.signal), runner.run(gate({ name: 'smoke' }), payload, lifetime.signal)]);
      for (const r of rs) assert.equal(r.passed, true, r.message);
    }
    assert.deepEqual(signalHolds(lifetime.signal), { listeners: 0, dependants: 0 });
    assert.deepEqual(await warnings.stop(), []);
    respond = () => ({ status: 200, delayMs: 1000 });
    const pending = runner.run(gate(), payload, lifetime.signal);
    setTimeout(() => lifetime.abort(), 50);
    assert.match((await pending).message, /cancelled before it answered/);
  });

  it('an endless answer is not read whole: fails at once with a snippet, the connection is let go', async () => {
    // A gate URL pointing at a log stream or a file download: without a bound the progressor would
    // read it until the gate's timeout, holding all of it in memory.
    let written = 0;
    let closed = false;
    const endless = createServer((req, res) => {
      req.resume();
      res.writeHead(500, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(1 << 20, 'y');
      const more = () => {
        while (!res.destroyed && written < 2_000 << 20) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
      };
      res.on('close', () => (closed = true));
      more();
    });
    await new Promise<void>((r) => endless.listen(0, '127.0.0.1', r));
    try {
      const t0 = Date.now();
      const r = await new HttpGateRunner().run(gate({ url: `http://127.0.0.1:${(endless.address() as AddressInfo).port}/logs`, timeoutMs: 20_000 }), payload);
      assert.equal(r.passed, false);
      assert.match(r.message, /HTTP 500: y{100}/);
      assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
      await new Promise((res) => setTimeout(res, 200));
      assert.ok(closed, 'the connection is closed');
      assert.ok(written < 64 << 20, `the server wrote ${written >> 20} MiB before the client let go`);
    } finally {
      endless.closeAllConnections();
      endless.close();
    }
  });

  it('a cut answer never shows a secret cut at the end of what was read', async () => {
    const token = payload.metadata['token']!;
    respond = () => ({ status: 500, body: `${' '.repeat(64 * 1024 - 5)}${token}${'z'.repeat(100)}` });
    const r = await new HttpGateRunner().run(gate(), payload);
    assert.equal(r.passed, false);
    assert.doesNotMatch(r.message, /s3cr|t0ken/);
  });

  it('body snippets are single-line, bounded, with secrets masked', () => {
    assert.equal(bodySnippet('a\n b  SECRET c', ['SECRET', '']), 'a b *** c');
    assert.ok(bodySnippet('x'.repeat(1000), []).length <= 200);
  });
});
