/**
 * The serving certificate, re-read when its files change (a rotated Secret, a renewed local cert)
 * without a restart: new connections get the new certificate, connections in flight keep theirs.
 * A half-written or mismatched pair is ignored until it is whole, so no request ever fails for it.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { Logger } from '../kube/logger.js';

export interface CertFiles {
  certFile: string;
  keyFile: string;
  /** How the user named each file, for messages: the flag (the default) or its environment variable. */
  certOption?: string;
  keyOption?: string;
}

export interface LoadedCert {
  cert: Buffer;
  key: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** For the logs: which names and addresses it is for. */
  subjectAltName: string;
}

/** Reads and checks a certificate/key pair; throws with a message naming the file and the problem. */
export function loadCert(files: CertFiles): LoadedCert {
  const certOption = files.certOption ?? '--tls-cert';
  const keyOption = files.keyOption ?? '--tls-key';
  const cert = readPem(files.certFile, 'serving certificate', certOption);
  const key = readPem(files.keyFile, 'private key', keyOption);
  // X509Certificate also reads DER, which TLS does not take: a DER file would otherwise be reported as a key that does not match.
  if (!cert.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`${files.certFile} (${certOption}) is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line); convert a DER file with: openssl x509 -inform der -in FILE -out tls.crt`);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw new Error(`${files.certFile} (${certOption}) is not a PEM certificate: ${(e as Error).message}`);
  }
  // A self-signed serving certificate (openssl req -x509) is a CA too, but it names its hosts.
  if (x509.ca && !x509.subjectAltName) throw new Error(`${files.certFile} (${certOption}) is a CA certificate with no host names (${x509.subject.replace(/\n/g, ', ')}), not a serving one: give tls.crt, and ca.crt to the webhook configuration's caBundle`);
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (e) {
    throw new Error(`${files.keyFile} (${keyOption}) is not a PEM private key (an unencrypted one, "-----BEGIN PRIVATE KEY-----" or "-----BEGIN RSA PRIVATE KEY-----"): ${(e as Error).message}`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new Error(`${files.keyFile} (${keyOption}) is not the key of ${files.certFile} (${certOption}): give the tls.key written together with that tls.crt`);
  try {
    createSecureContext({ cert, key });
  } catch (e) {
    throw new Error(`${files.certFile} (${certOption}) and ${files.keyFile} (${keyOption}) cannot serve TLS: ${(e as Error).message}`);
  }
  return { cert, key, notBefore: new Date(x509.validFrom), notAfter: new Date(x509.validTo), subjectAltName: x509.subjectAltName ?? '' };
}

/** Why clients will refuse this certificate now, or undefined. */
export function expiryProblem(c: LoadedCert, now = Date.now()): string | undefined {
  if (c.notAfter.getTime() <= now) return `the serving certificate expired at ${c.notAfter.toISOString()}; clients (the apiserver) refuse it`;
  // Issued by a clock ahead of this one: taken once it is valid (the files are looked at again on every poll until then).
  if (c.notBefore.getTime() > now) return `the serving certificate is not valid before ${c.notBefore.toISOString()}; clients (the apiserver) refuse it until then`;
  return undefined;
}

function readPem(file: string, what: string, flag: string): Buffer {
  let content: Buffer;
  try {
    content = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
    throw new Error(`cannot read the ${what} ${file} (${flag}): ${why}`);
  }
  if (content.length === 0) throw new Error(`the ${what} ${file} (${flag}) is empty`);
  return content;
}

export interface CertWatch {
  stop(): void;
  /** Looks at the files now instead of at the next poll (SIGHUP). */
  checkNow(): void;
}

/** Polls the files' stat (works through the symlink swaps of mounted Secrets) and calls onChange with a verified pair. */
export function watchCert(files: CertFiles, intervalMs: number, log: Logger, onChange: (c: LoadedCert) => void): CertWatch {
  const stamp = () => {
    try {
      const a = statSync(files.certFile);
      const b = statSync(files.keyFile);
      return `${a.mtimeMs}:${a.size}:${a.ino}/${b.mtimeMs}:${b.size}:${b.ino}`;
    } catch {
      return 'missing';
    }
  };
  let last = stamp();
  let warned = '';
  const check = () => {
    const now = stamp();
    if (now === last) return;
    if (now === 'missing') {
      // Mid-swap for an instant, or gone: the current pair stays; said once if it lasts.
      if (warned !== now && last !== 'missing') log.warn({ certFile: files.certFile, keyFile: files.keyFile }, 'certificate files are missing; keeping the current pair');
      warned = now;
      return;
    }
    try {
      const loaded = loadCert(files);
      // An expired (or not yet valid) replacement would fail every call; the current pair may still have time left.
      const expired = expiryProblem(loaded);
      if (expired) throw new Error(`${files.certFile}: ${expired}`);
      last = now;
      warned = '';
      onChange(loaded);
      log.info({ notAfter: loaded.notAfter.toISOString(), subjectAltName: loaded.subjectAltName }, 'serving certificate reloaded');
    } catch (e) {
      // Likely mid-write: keep serving the old pair and look again next tick; say so once per state of the files.
      if (warned !== now) log.warn({ err: (e as Error).message }, 'certificate files changed but are not a usable pair; keeping the current one');
      warned = now;
    }
  };
  const timer = setInterval(check, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer), checkNow: check };
}

/**
 * TLS 1.2 or newer, and on TLS 1.2 only forward-secret AEAD suites (what Kubernetes' own servers
 * offer by default); the TLS 1.3 suites must be named too, or naming ciphers turns TLS 1.3 off.
 */
export const TLS_OPTIONS: SecureContextOptions = {
  minVersion: 'TLSv1.2',
  ciphers: [
    'TLS_AES_128_GCM_SHA256',
    'TLS_AES_256_GCM_SHA384',
    'TLS_CHACHA20_POLY1305_SHA256',
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
    'ECDHE-RSA-CHACHA20-POLY1305',
  ].join(':'),
};
