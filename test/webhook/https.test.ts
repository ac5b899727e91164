/** The real `kube-canary webhook` process over real HTTPS, with certificates from `kube-canary certs`. */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CliProcess, runCli, startCli } from '../support/cli.js';
import { loadReview } from './fixtures.js';

function post(port: number, ca: Buffer, body: string, extra: Record<string, unknown> = {}): Promise<{ status: number; json: any; protocol?: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path: '/mutate', method: 'POST', ca, agent: false, headers: { 'content-type': 'application/json' }, ...extra },
      (res) => {
        const protocol = (res.socket as import('node:tls').TLSSocket).getProtocol() ?? undefined;
        let data = '';
        res.on('data', (c) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(data), protocol }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('kube-canary webhook over HTTPS (real process)', function () {
  this.timeout(60_000);
  let dir: string;
  let proc: CliProcess;
  let port: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kc-https-'));
    await runCli(['certs', '--out', join(dir, 'a'), '--hosts', '127.0.0.1,localhost,kube-canary-webhook.kube-canary.svc', '--valid-days', '30']);
    proc = startCli(['webhook', '--port', '0', '--bind', '127.0.0.1', '--tls-cert', join(dir, 'a/tls.crt'), '--tls-key', join(dir, 'a/tls.key')], { KUBE_CANARY_CERT_POLL_MS: '200' });
    const line = await proc.waitForLog('webhook serving');
    port = Number(new URL(line.address as string).port);
  });

  after(async () => {
    await proc?.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('certs writes a CA and a serving certificate with IP and DNS SANs and the asked validity', () => {
    const ca = new X509Certificate(readFileSync(join(dir, 'a/ca.crt')));
    const leaf = new X509Certificate(readFileSync(join(dir, 'a/tls.crt')));
    assert.equal(ca.ca, true);
    assert.equal(leaf.ca, false);
    assert.ok(leaf.verify(ca.publicKey), 'leaf is signed by the CA');
    assert.ok(leaf.checkIP('127.0.0.1'));
    assert.ok(leaf.checkHost('localhost'));
    assert.ok(leaf.checkHost('kube-canary-webhook.kube-canary.svc'));
    assert.equal(leaf.checkIP('10.0.0.1'), undefined);
    const days = (Date.parse(leaf.validTo) - Date.now()) / 86_400_000;
    assert.ok(days > 29 && days <= 30.01, `validity ${days} days`);
    assert.equal(leaf.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    assert.match(leaf.keyUsage?.join(',') ?? '', /1\.3\.6\.1\.5\.5\.7\.3\.1/); // serverAuth
  });

  it('answers a real AdmissionReview over TLS 1.2+ verified against ca.crt', async () => {
    const res = await post(port, readFileSync(join(dir, 'a/ca.crt')), JSON.stringify(loadReview('review-set-image')));
    assert.equal(res.status, 200);
    assert.equal(res.json.response.allowed, true);
    assert.equal(res.json.response.patchType, 'JSONPatch');
    assert.match(res.protocol ?? '', /^TLSv1\.[23]$/);
  });

  it('refuses TLS 1.1', async () => {
    await assert.rejects(post(port, readFileSync(join(dir, 'a/ca.crt')), '{}', { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }));
  });

  it('on TLS 1.2 offers only forward-secret AEAD suites, and still speaks TLS 1.3', async () => {
    const ca = readFileSync(join(dir, 'a/ca.crt'));
    const body = JSON.stringify(loadReview('review-set-image'));
    for (const weak of ['AES128-SHA', 'AES256-GCM-SHA384', 'ECDHE-RSA-AES128-SHA256']) {
      await assert.rejects(post(port, ca, body, { maxVersion: 'TLSv1.2', ciphers: weak }), /handshake failure|no shared cipher|ECONNRESET|socket hang up/, weak);
    }
    assert.equal((await post(port, ca, body, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' })).protocol, 'TLSv1.2');
    assert.equal((await post(port, ca, body, { minVersion: 'TLSv1.3' })).protocol, 'TLSv1.3');
  });

  it('serves a replaced certificate without a restart, and never fails a request meanwhile', async () => {
    await runCli(['certs', '--out', join(dir, 'b'), '--hosts', '127.0.0.1']);
    const oldCa = readFileSync(join(dir, 'a/ca.crt'));
    const newCa = readFileSync(join(dir, 'b/ca.crt'));
    // Swap in the new pair the way a mounted Secret changes: write aside, then rename over.
    writeFileSync(join(dir, 'a/tls.key.new'), readFileSync(join(dir, 'b/tls.key')));
    writeFileSync(join(dir, 'a/tls.crt.new'), readFileSync(join(dir, 'b/tls.crt')));
    renameSync(join(dir, 'a/tls.crt.new'), join(dir, 'a/tls.crt'));
    const during: Array<Promise<unknown>> = [];
    const deadline = Date.now() + 10_000;
    let reloaded = false;
    renameSync(join(dir, 'a/tls.key.new'), join(dir, 'a/tls.key'));
    while (Date.now() < deadline && !reloaded) {
      // Each request trusts both CAs, so it must succeed whichever pair is being served.
      during.push(post(port, Buffer.concat([oldCa, newCa]), JSON.stringify(loadReview('review-set-image'))).then((r) => assert.equal(r.status, 200)));
      reloaded = await post(port, newCa, JSON.stringify(loadReview('review-set-image'))).then(() => true, () => false);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(reloaded, 'the new certificate was not served within 10 s');
    await Promise.all(during);
    await assert.rejects(post(port, oldCa, '{}'), /certificate/);
    assert.ok(proc.lines.some((l) => l.includes('serving certificate reloaded')));
  });

  it('on SIGTERM (no --shutdown-delay: the default) stops accepting, finishes what is in flight, closing its connection, and exits 0 right after', async () => {
    const body = JSON.stringify(loadReview('review-set-image'));
    const ca = readFileSync(join(dir, 'b/ca.crt'));
    const exited = new Promise<number | null>((resolve) => proc.child.once('exit', (code) => resolve(code)));
    // A request whose body is still arriving when SIGTERM lands must still be answered. The client
    // would keep the connection (keep-alive), as the apiserver does: the answer must close it.
    const agent = new Agent({ keepAlive: true });
    const answer = new Promise<{ status: number; connection?: string }>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/mutate', method: 'POST', ca, agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection }));
      });
      req.on('error', reject);
      req.write(body.slice(0, 100));
      setTimeout(() => {
        proc.child.kill('SIGTERM');
        setTimeout(() => req.end(body.slice(100)), 300);
      }, 300);
    });
    const { status, connection } = await answer;
    assert.equal(status, 200);
    assert.equal(connection, 'close');
    const answeredAt = Date.now();
    // Not the 20 s grace period: nothing keeps the server open once the answer is out.
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running 5 s after its last answer'), 5000))]);
    agent.destroy();
    assert.equal(code, 0, `exit code ${code} (${Date.now() - answeredAt} ms after the answer)`);
    assert.ok(proc.lines.some((l) => l.includes('finishing requests in flight')));
  });
});

describe('kube-canary webhook --shutdown-delay (real process)', function () {
  this.timeout(60_000);
  let dir: string;
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** One request on a new connection: status and Connection header. */
  function call(port: number, ca: Buffer, method: string, path: string, body?: string): Promise<{ status: number; connection?: string }> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path, method, ca, agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('keeps accepting for the delay after SIGTERM (not ready, closing every connection), then exits 0', async () => {
    dir = mkdtempSync(join(tmpdir(), 'kc-delay-'));
    await runCli(['certs', '--out', dir, '--hosts', '127.0.0.1']);
    const ca = readFileSync(join(dir, 'ca.crt'));
    const proc = startCli(['webhook', '--port', '0', '--bind', '127.0.0.1', '--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key'), '--shutdown-delay', '2s']);
    try {
      const port = Number(new URL((await proc.waitForLog('webhook serving')).address as string).port);
      const exited = new Promise<number | null>((resolve) => proc.child.once('exit', (code) => resolve(code)));
      const signalled = Date.now();
      proc.child.kill('SIGTERM');
      await proc.waitForLog('stopping: not ready, still accepting until the delay is over (a second signal stops at once)');
      // New connections, as the apiserver and the kubelet open them while the endpoint is being removed.
      assert.deepEqual(await call(port, ca, 'GET', '/readyz'), { status: 503, connection: 'close' });
      assert.deepEqual(await call(port, ca, 'POST', '/mutate', JSON.stringify(loadReview('review-set-image'))), { status: 200, connection: 'close' });
      assert.equal(await exited, 0);
      assert.ok(Date.now() - signalled >= 2000, `exited ${Date.now() - signalled} ms after SIGTERM, before the 2 s delay`);
    } finally {
      await proc.stop('SIGKILL');
    }
  });
});
