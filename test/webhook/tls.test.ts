import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCerts } from '../../src/certs/generate.js';
import { createLogger } from '../../src/kube/logger.js';
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
    const stop = watchCert(files, 10, log, (c) => loaded.push(c));
    try {
      // A key that does not match the certificate, swapped in whole (a copy in place could be seen half-written).
      copyFileSync(join(dir, 'other.key'), `${files.keyFile}.new`);
      renameSync(`${files.keyFile}.new`, files.keyFile);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(lines.filter((l) => l.msg.includes('not a valid pair yet')).length, 1);
      assert.equal(loaded.length, 0);
      writeFileSync(`${files.keyFile}.new`, good);
      renameSync(`${files.keyFile}.new`, files.keyFile);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(loaded.length, 1);
      assert.ok(lines.some((l) => l.msg === 'serving certificate reloaded'));
    } finally {
      stop();
    }
  });

  it('names the file and its flag when one cannot be read', () => {
    assert.throws(() => loadCert({ certFile: join(dir, 'nope.crt'), keyFile: join(dir, 'tls.key') }), /cannot read the serving certificate .*nope\.crt \(--tls-cert\): no such file/);
    assert.throws(() => loadCert({ certFile: join(dir, 'tls.crt'), keyFile: dir }), /cannot read the private key .* \(--tls-key\): it is a directory/);
  });
});

function readKey(file: string): Buffer {
  return loadCert({ certFile: file.replace(/tls\.key$/, 'tls.crt'), keyFile: file }).key;
}
