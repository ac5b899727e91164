/**
 * A CA and a serving certificate signed by it, made with node-forge: what the apiserver needs to
 * call the webhook over HTTPS (caBundle = the CA, the webhook serves the leaf).
 */
import { isIP } from 'node:net';
import forge from 'node-forge';

export interface CertOptions {
  /** IPs become IP SANs, everything else DNS SANs. The first entry is also the leaf's CN. */
  hosts: string[];
  validDays: number;
  caValidDays?: number;
  keyBits?: number;
}

export interface CertBundle {
  caCert: string;
  cert: string;
  key: string;
  notAfter: Date;
}

export function generateCerts(opts: CertOptions): CertBundle {
  if (opts.hosts.length === 0) throw new Error('no hosts given: pass --hosts with at least one IP or DNS name, e.g. 127.0.0.1,localhost');
  for (const h of opts.hosts) {
    if (!isIP(h) && !/^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i.test(h)) {
      throw new Error(`host ${JSON.stringify(h)} is neither an IP address nor a DNS name`);
    }
  }
  if (!Number.isInteger(opts.validDays) || opts.validDays < 1) throw new Error(`validity ${opts.validDays} days is not a whole number of days, at least 1`);
  const bits = opts.keyBits ?? 2048;
  const now = new Date();
  // Backdate a little so a client whose clock lags does not see a certificate from the future.
  const notBefore = new Date(now.getTime() - 5 * 60_000);

  const caKeys = forge.pki.rsa.generateKeyPair({ bits });
  const ca = forge.pki.createCertificate();
  ca.publicKey = caKeys.publicKey;
  ca.serialNumber = serial();
  ca.validity.notBefore = notBefore;
  ca.validity.notAfter = addDays(now, opts.caValidDays ?? Math.max(opts.validDays, 3650));
  const caSubject = [{ name: 'commonName', value: 'kube-canary-ca' }];
  ca.setSubject(caSubject);
  ca.setIssuer(caSubject);
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ca.sign(caKeys.privateKey, forge.md.sha256.create());

  const leafKeys = forge.pki.rsa.generateKeyPair({ bits });
  const leaf = forge.pki.createCertificate();
  leaf.publicKey = leafKeys.publicKey;
  leaf.serialNumber = serial();
  leaf.validity.notBefore = notBefore;
  leaf.validity.notAfter = addDays(now, opts.validDays);
  leaf.setSubject([{ name: 'commonName', value: opts.hosts[0]! }]);
  leaf.setIssuer(caSubject);
  leaf.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    // type 7 = iPAddress, type 2 = dNSName (RFC 5280 GeneralName).
    { name: 'subjectAltName', altNames: opts.hosts.map((h) => (isIP(h) ? { type: 7, ip: h } : { type: 2, value: h })) },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
  ]);
  leaf.sign(caKeys.privateKey, forge.md.sha256.create());

  return {
    caCert: forge.pki.certificateToPem(ca),
    cert: forge.pki.certificateToPem(leaf),
    key: forge.pki.privateKeyToPem(leafKeys.privateKey),
    notAfter: leaf.validity.notAfter,
  };
}

function serial(): string {
  // Positive 128-bit serial (leading hex digit < 8 keeps the DER integer positive).
  const hex = forge.util.bytesToHex(forge.random.getBytesSync(16));
  return `0${hex.slice(1)}`;
}

function addDays(d: Date, days: number): Date {
  return new Date(d.getTime() + days * 86_400_000);
}
