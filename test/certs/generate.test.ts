import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { checkCertOptions, generateCerts, serial } from '../../src/certs/generate.js';

const DAY = 86_400_000;
const daysLeft = (c: X509Certificate) => (Date.parse(c.validTo) - Date.now()) / DAY;

describe('certs: generating the CA and the serving certificate', function () {
  this.timeout(30_000);

  it('without a CA validity, stretches the CA to cover a leaf longer than the default 10 years', () => {
    const b = generateCerts({ hosts: ['127.0.0.1'], validDays: 4000, keyBits: 1024 });
    const ca = new X509Certificate(b.caCert);
    const leaf = new X509Certificate(b.cert);
    assert.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
    assert.ok(Date.parse(ca.validTo) >= Date.parse(leaf.validTo), `CA until ${ca.validTo}, leaf until ${leaf.validTo}`);
    assert.ok(daysLeft(leaf) > 3999 && daysLeft(leaf) <= 4000.01);
  });

  it('serial numbers are 128-bit, positive and minimally DER-encoded (first byte 0x01-0x7f), so OpenSSL loads every certificate', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const s = serial();
      assert.match(s, /^[0-9a-f]{32}$/);
      const first = parseInt(s.slice(0, 2), 16);
      assert.ok(first >= 0x01 && first <= 0x7f, s);
      seen.add(s);
    }
    assert.equal(seen.size, 20_000);
  });

  it('keeps the default 10-year CA for a shorter leaf, and the given CA validity when set', () => {
    const a = new X509Certificate(generateCerts({ hosts: ['localhost'], validDays: 30, keyBits: 1024 }).caCert);
    assert.ok(daysLeft(a) > 3649 && daysLeft(a) <= 3650.01);
    const b = new X509Certificate(generateCerts({ hosts: ['localhost'], validDays: 30, caValidDays: 30, keyBits: 1024 }).caCert);
    assert.ok(daysLeft(b) > 29 && daysLeft(b) <= 30.01);
  });

  it('puts IPv6 addresses in IP SANs and wildcard names in DNS SANs', () => {
    const leaf = new X509Certificate(generateCerts({ hosts: ['::1', '*.kube-canary.svc'], validDays: 1, keyBits: 1024 }).cert);
    assert.ok(leaf.checkIP('::1'));
    assert.ok(leaf.checkHost('kube-canary-webhook.kube-canary.svc'));
  });

  it('certifies exactly the IPv6 address given, also with an IPv4 tail, once per address or name', () => {
    const hosts = ['1:2:3:4:5:6:1.2.3.4', '::ffff:10.0.0.1', 'fe80::1:2', '2001:db8::', '::1', '0:0:0:0:0:0:0:1', 'a.example.com', 'A.Example.com', '192.168.0.1'];
    const leaf = new X509Certificate(generateCerts({ hosts, validDays: 1, keyBits: 1024 }).cert);
    assert.equal(
      leaf.subjectAltName,
      'IP Address:1:2:3:4:5:6:102:304, IP Address:0:0:0:0:0:FFFF:A00:1, IP Address:FE80:0:0:0:0:0:1:2, IP Address:2001:DB8:0:0:0:0:0:0, IP Address:0:0:0:0:0:0:0:1, DNS:a.example.com, IP Address:192.168.0.1',
    );
    assert.ok(leaf.checkIP('1:2:3:4:5:6:102:304') && !leaf.checkIP('1.2.3.4'));
  });

  it('makes a CA that may sign serving certificates only (pathlen 0), and keeps a long first host out of the CN', () => {
    const long = `${'a'.repeat(60)}.example.com`;
    const b = generateCerts({ hosts: [long], validDays: 1, keyBits: 1024 });
    const bc = forge.pki.certificateFromPem(b.caCert).getExtension('basicConstraints') as { cA?: boolean; pathLenConstraint?: number };
    assert.deepEqual([bc.cA, bc.pathLenConstraint], [true, 0]);
    assert.equal(new X509Certificate(b.cert).subject, 'CN=kube-canary-webhook');
    assert.ok(new X509Certificate(b.cert).checkHost(long));
  });

  it('writes both CNs as UTF8String: the CA\'s "@" (and a wildcard\'s "*") are not PrintableString, which Go refuses', () => {
    const b = generateCerts({ hosts: ['*.kube-canary.svc'], validDays: 1, keyBits: 1024 });
    for (const pem of [b.caCert, b.cert]) {
      const cn = forge.pki.certificateFromPem(pem).subject.getField('CN') as { valueTagClass: number; value: string };
      assert.equal(cn.valueTagClass, forge.asn1.Type.UTF8, cn.value);
    }
    assert.match(new X509Certificate(b.caCert).subject, /^CN=kube-canary-ca@\d+$/);
  });

  it('refuses a leaf that would outlive its CA, naming both flags and the fix', () => {
    assert.throws(
      () => checkCertOptions({ hosts: ['localhost'], validDays: 4000, caValidDays: 3650 }),
      /^Error: --valid-days 4000 is longer than --ca-valid-days 3650: .*raise --ca-valid-days to at least 4000 \(or leave it out\) or lower --valid-days$/,
    );
  });

  it('refuses validities under 1 day or over 100 years, with the range', () => {
    assert.throws(() => checkCertOptions({ hosts: ['localhost'], validDays: 1, caValidDays: 0 }), /^Error: --ca-valid-days 0 must be a whole number from 1 to 36500$/);
    assert.throws(() => checkCertOptions({ hosts: ['localhost'], validDays: 0 }), /^Error: --valid-days 0 must be a whole number from 1 to 36500$/);
    assert.throws(() => checkCertOptions({ hosts: ['localhost'], validDays: 1.5 }), /--valid-days 1\.5 must be/);
    assert.throws(() => checkCertOptions({ hosts: ['localhost'], validDays: 36_501 }), /--valid-days 36501 must be/);
  });
});
