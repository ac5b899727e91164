/**
 * A CA and a serving certificate signed by it, made with node-forge: what the apiserver needs to
 * call the webhook over HTTPS (caBundle = the CA, the webhook serves the leaf).
 */
import { randomBytes } from 'node:crypto';
import forge from 'node-forge';
import { checkHosts, ipSanBytes, isIpHost, uniqueHosts } from './hosts.js';

/** Longest validity accepted, for the CA and the leaf: 100 years (the dates stay well inside X.509's). */
export const MAX_VALID_DAYS = 36_500;
/** The CA's validity when none is given: 10 years, or the leaf's if that is longer. */
export const DEFAULT_CA_VALID_DAYS = 3650;

export interface CertOptions {
  /** IPs become IP SANs, everything else DNS SANs (see hosts.ts). The first entry is also the leaf's CN. */
  hosts: string[];
  validDays: number;
  /** At least validDays: a leaf must not outlive its CA. Default: max(DEFAULT_CA_VALID_DAYS, validDays). */
  caValidDays?: number;
  keyBits?: number;
}

export interface CertBundle {
  caCert: string;
  cert: string;
  key: string;
  notAfter: Date;
}

/** Same range and wording as the CLI's flag parser (intOption(flag, 1, MAX_VALID_DAYS)). */
function checkDays(flag: string, days: number): void {
  if (!Number.isInteger(days) || days < 1 || days > MAX_VALID_DAYS) throw new Error(`${flag} ${JSON.stringify(days)} must be a whole number from 1 to ${MAX_VALID_DAYS}`);
}

/** Throws with a message naming the flag and the fix unless the options make a usable pair. */
export function checkCertOptions(opts: CertOptions): void {
  checkHosts(opts.hosts);
  checkDays('--valid-days', opts.validDays);
  if (opts.caValidDays === undefined) return;
  checkDays('--ca-valid-days', opts.caValidDays);
  if (opts.validDays > opts.caValidDays) {
    throw new Error(
      `--valid-days ${opts.validDays} is longer than --ca-valid-days ${opts.caValidDays}: the serving certificate would outlive its CA ` +
        `and stop verifying when the CA expires; raise --ca-valid-days to at least ${opts.validDays} (or leave it out) or lower --valid-days`,
    );
  }
}

export function generateCerts(opts: CertOptions): CertBundle {
  checkCertOptions(opts);
  const bits = opts.keyBits ?? 2048;
  const now = new Date();
  // Backdate a little so a client whose clock lags does not see a certificate from the future.
  const notBefore = new Date(now.getTime() - 5 * 60_000);
  const ca = makeCa(bits, notBefore, addDays(now, opts.caValidDays ?? Math.max(opts.validDays, DEFAULT_CA_VALID_DAYS)));
  const leafKeys = forge.pki.rsa.generateKeyPair({ bits });
  const leaf = makeLeaf(ca, leafKeys.publicKey, opts.hosts, notBefore, addDays(now, opts.validDays));
  return {
    caCert: forge.pki.certificateToPem(ca.cert),
    cert: forge.pki.certificateToPem(leaf),
    key: forge.pki.privateKeyToPem(leafKeys.privateKey),
    notAfter: leaf.validity.notAfter,
  };
}

interface Ca {
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
  subject: forge.pki.CertificateField[];
}

/**
 * A CN as a UTF8String. forge's default, PrintableString, has neither the CA's '@' nor a
 * wildcard's '*', and Go (the apiserver) refuses such a certificate. (forge's typings call the
 * tag a Class; it takes a Type.)
 */
function commonName(value: string): forge.pki.CertificateField {
  return { name: 'commonName', value, valueTagClass: forge.asn1.Type.UTF8 as unknown as forge.asn1.Class };
}

function makeCa(bits: number, notBefore: Date, notAfter: Date): Ca {
  const keys = forge.pki.rsa.generateKeyPair({ bits });
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  // Unique per CA, as Kubernetes names its self-signed ones: a client's "unknown authority" error then tells two apart.
  const subject = [commonName(`kube-canary-ca@${Math.floor(Date.now() / 1000)}`)];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    // pathLenConstraint 0: this CA signs serving certificates only, never another CA.
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert, key: keys.privateKey, subject };
}

function makeLeaf(ca: Ca, publicKey: forge.pki.rsa.PublicKey, hosts: string[], notBefore: Date, notAfter: Date): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serial();
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  // X.509 bounds a CN at 64 characters; clients match the SANs anyway.
  cert.setSubject([commonName(hosts[0]!.length <= 64 ? hosts[0]! : 'kube-canary-webhook')]);
  cert.setIssuer(ca.subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    // type 7 = iPAddress, type 2 = dNSName (RFC 5280 GeneralName).
    { name: 'subjectAltName', altNames: uniqueHosts(hosts).map((h) => (isIpHost(h) ? { type: 7, value: ipSanBytes(h) } : { type: 2, value: h })) },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.cert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  return cert;
}

/**
 * A random 128-bit serial that DER encodes as given: the first byte is 0x01-0x7f, so the integer
 * is positive and has no leading zero byte. (Zeroing only the first hex digit left a 0x00 first
 * byte one time in sixteen, which with a next byte under 0x80 is "illegal padding" to OpenSSL:
 * about one certificate in 32 could not be loaded.)
 */
export function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f || 0x01;
  return bytes.toString('hex');
}

function addDays(d: Date, days: number): Date {
  return new Date(d.getTime() + days * 86_400_000);
}
