import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { generateCerts } from '../../src/certs/generate.js';
import { createLogger } from '../../src/kube/logger.js';
import { createWebhookMetrics } from '../../src/webhook/metrics.js';
import { serve } from '../../src/webhook/server.js';
import { loadCert, watchCert } from '../../src/webhook/tls.js';

describe('webhook serving certificate: reload', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kc-tls-'));
    const c = generateCerts({ hosts: ['127.0.0.1'], validDays: 1, keyBits: 1024 });
    writeFileSync(join(dir, 'tls.crt'), c.cert);
    writeFileSync(join(dir, 'tls.key'), c.key);
    writeFileSync(join(dir, 'other.key'), generateCerts({ hosts: ['127.0.0.1'], validDays: 1, keyBits: 1024 }).key);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('warns once about a pair that stays broken, not on every poll, and takes it when it is whole', async () => {
    const lines: Array<{ msg: string }> = [];
    const log = createLogger('webhook', 'info', { write: (l: string) => void lines.push(JSON.parse(l)) });
    const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
    const good = readKey(files.keyFile);
    const loaded: unknown[] = [];
    const { stop } = watchCert(files, 10, log, (c) => loaded.push(c));
    try {
      // A key that does not match the certificate.
      swapIn(files.keyFile, readFileSync(join(dir, 'other.key')));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(lines.filter((l) => l.msg.includes('not a usable pair')).length, 1);
      assert.equal(loaded.length, 0);
      swapIn(files.keyFile, good);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(loaded.length, 1);
      assert.ok(lines.some((l) => l.msg === 'serving certificate reloaded'));
    } finally {
      stop();
    }
  });

  it('keeps the current pair, saying why, when the replacement has expired', async () => {
    const lines: Array<{ msg: string; err?: string }> = [];
    const log = createLogger('webhook', 'info', { write: (l: string) => void lines.push(JSON.parse(l)) });
    const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key') };
    const loaded: unknown[] = [];
    const { stop } = watchCert(files, 10, log, (c) => loaded.push(c));
    try {
      const old = expiredPair();
      swapIn(files.keyFile, old.key);
      swapIn(files.certFile, old.cert);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(loaded.length, 0);
      const warns = lines.filter((l) => l.msg.includes('not a usable pair'));
      assert.equal(warns.length, 1);
      assert.match(warns[0]!.err ?? '', /the serving certificate expired at 2020-01-01T00:00:00.000Z; clients \(the apiserver\) refuse it/);
    } finally {
      stop();
    }
  });

  it('takes a replacement issued by a clock ahead of this one only once it is valid', async () => {
    const lines: Array<{ msg: string; err?: string }> = [];
    const log = createLogger('webhook', 'info', { write: (l: string) => void lines.push(JSON.parse(l)) });
    const files = { certFile: join(dir, 'ahead.crt'), keyFile: join(dir, 'ahead.key') };
    const now = generateCerts({ hosts: ['127.0.0.1'], validDays: 1, keyBits: 1024 });
    writeFileSync(files.certFile, now.cert);
    writeFileSync(files.keyFile, now.key);
    const loaded: Array<{ notBefore: Date }> = [];
    const { stop } = watchCert(files, 10, log, (c) => loaded.push(c));
    try {
      // Certificates carry whole seconds: this one becomes valid within 1-2 s.
      const ahead = pairValid(new Date(Math.ceil(Date.now() / 1000) * 1000 + 1000), new Date(Date.now() + 86_400_000));
      swapIn(files.keyFile, ahead.key);
      swapIn(files.certFile, ahead.cert);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(loaded.length, 0, 'not taken before it is valid');
      assert.match(lines.find((l) => l.msg.includes('not a usable pair'))?.err ?? '', /is not valid before .*; clients \(the apiserver\) refuse it until then/);
      for (let i = 0; i < 40 && loaded.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(loaded.length, 1, 'taken once valid, without another change of the files');
      assert.ok(loaded[0]!.notBefore.getTime() <= Date.now());
    } finally {
      stop();
    }
  });

  it('serves an expired pair at start (a renewal may be on its way) but says so at once', async () => {
    const lines: Array<{ msg: string; level: number }> = [];
    const log = createLogger('webhook', 'info', { write: (l: string) => void lines.push(JSON.parse(l)) });
    const old = expiredPair();
    writeFileSync(join(dir, 'old.crt'), old.cert);
    writeFileSync(join(dir, 'old.key'), old.key);
    const running = await serve({ app: (_req, res) => res.end(), port: 0, bind: '127.0.0.1', certFile: join(dir, 'old.crt'), keyFile: join(dir, 'old.key'), metrics: createWebhookMetrics(), log, certPollMs: 60_000 });
    try {
      assert.ok(lines.some((l) => l.level === 40 && /the serving certificate expired at 2020-01-01T00:00:00.000Z/.test(l.msg)), JSON.stringify(lines));
      assert.equal(running.certificate.notAfter, '2020-01-01T00:00:00.000Z');
    } finally {
      await running.shutdown(0);
    }
  });

  it('says once that the files are gone, keeps the current pair, and takes them back when they return', async () => {
    const lines: Array<{ msg: string }> = [];
    const log = createLogger('webhook', 'info', { write: (l: string) => void lines.push(JSON.parse(l)) });
    const fresh = generateCerts({ hosts: ['127.0.0.1'], validDays: 1, keyBits: 1024 });
    const files = { certFile: join(dir, 'gone.crt'), keyFile: join(dir, 'gone.key') };
    writeFileSync(files.certFile, fresh.cert);
    writeFileSync(files.keyFile, fresh.key);
    const loaded: unknown[] = [];
    const { stop } = watchCert(files, 10, log, (c) => loaded.push(c));
    try {
      rmSync(files.certFile);
      rmSync(files.keyFile);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(lines.filter((l) => l.msg === 'certificate files are missing; keeping the current pair').length, 1);
      const next = generateCerts({ hosts: ['127.0.0.1'], validDays: 2, keyBits: 1024 });
      swapIn(files.keyFile, next.key);
      swapIn(files.certFile, next.cert);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(loaded.length, 1);
    } finally {
      stop();
    }
  });

  it('names the file and its flag when one cannot be read', () => {
    assert.throws(() => loadCert({ certFile: join(dir, 'nope.crt'), keyFile: join(dir, 'tls.key') }), /cannot read the serving certificate .*nope\.crt \(--tls-cert\): no such file/);
    assert.throws(() => loadCert({ certFile: join(dir, 'tls.crt'), keyFile: dir }), /cannot read the private key .* \(--tls-key\): it is a directory/);
  });
  it('says which file is wrong and how: DER instead of PEM, an empty key, the CA given as the serving certificate, a key of another pair, the variable it came from', () => {
    const crt = join(dir, 'tls.crt');
    const key = join(dir, 'tls.key');
    const der = join(dir, 'tls.der');
    writeFileSync(der, new X509Certificate(readFileSync(crt)).raw);
    assert.throws(() => loadCert({ certFile: der, keyFile: key }), /tls\.der \(--tls-cert\) is not a PEM certificate \(no "-----BEGIN CERTIFICATE-----" line\); convert a DER file with: openssl x509 -inform der/);
    const empty = join(dir, 'empty.key');
    writeFileSync(empty, '');
    assert.throws(() => loadCert({ certFile: crt, keyFile: empty, keyOption: 'KUBE_CANARY_TLS_KEY' }), /the private key .*empty\.key \(KUBE_CANARY_TLS_KEY\) is empty/);
    const ca = join(dir, 'ca.crt');
    writeFileSync(ca, generateCerts({ hosts: ['127.0.0.1'], validDays: 1, keyBits: 1024 }).caCert);
    assert.throws(() => loadCert({ certFile: ca, keyFile: key }), /ca\.crt \(--tls-cert\) is a CA certificate with no host names \(CN=kube-canary-ca@\d+\), not a serving one: give tls\.crt/);
    assert.throws(() => loadCert({ certFile: crt, keyFile: join(dir, 'other.key'), certOption: 'KUBE_CANARY_TLS_CERT' }), /other\.key \(--tls-key\) is not the key of .*tls\.crt \(KUBE_CANARY_TLS_CERT\): give the tls\.key written together with that tls\.crt/);
    const garbage = join(dir, 'garbage.key');
    writeFileSync(garbage, 'not a key');
    assert.throws(() => loadCert({ certFile: crt, keyFile: garbage }), /garbage\.key \(--tls-key\) is not a PEM private key/);
  });

  it('takes a self-signed serving certificate (openssl req -x509 makes it a CA too) when it names its hosts', () => {
    const keys = forge.pki.rsa.generateKeyPair({ bits: 1024 });
    const c = forge.pki.createCertificate();
    c.publicKey = keys.publicKey;
    c.serialNumber = '01';
    c.validity.notBefore = new Date(Date.now() - 60_000);
    c.validity.notAfter = new Date(Date.now() + 86_400_000);
    c.setSubject([{ name: 'commonName', value: 'localhost' }]);
    c.setIssuer([{ name: 'commonName', value: 'localhost' }]);
    c.setExtensions([{ name: 'basicConstraints', cA: true }, { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }] }]);
    c.sign(keys.privateKey, forge.md.sha256.create());
    writeFileSync(join(dir, 'self.crt'), forge.pki.certificateToPem(c));
    writeFileSync(join(dir, 'self.key'), forge.pki.privateKeyToPem(keys.privateKey));
    assert.equal(loadCert({ certFile: join(dir, 'self.crt'), keyFile: join(dir, 'self.key') }).subjectAltName, 'DNS:localhost');
  });
});

function readKey(file: string): Buffer {
  return loadCert({ certFile: file.replace(/tls\.key$/, 'tls.crt'), keyFile: file }).key;
}

/** Replaces a file whole, as a mounted Secret changes (a copy in place could be read half-written). */
function swapIn(file: string, content: string | Buffer): void {
  writeFileSync(`${file}.new`, content);
  renameSync(`${file}.new`, file);
}

/** A self-signed pair valid in 2019 only. */
function expiredPair(): { cert: string; key: string } {
  return pairValid(new Date('2019-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
}

/** A self-signed pair valid from `notBefore` to `notAfter`. */
function pairValid(notBefore: Date, notAfter: Date): { cert: string; key: string } {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 1024 });
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = '01';
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  cert.setSubject([{ name: 'commonName', value: '127.0.0.1' }]);
  cert.setIssuer([{ name: 'commonName', value: '127.0.0.1' }]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey) };
}
