/**
 * The serving certificate, re-read when its files change (a rotated Secret, a renewed local cert)
 * without a restart: new connections get the new certificate, connections in flight keep theirs.
 * A half-written or mismatched pair is ignored until it is whole, so no request ever fails for it.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { Logger } from '../kube/logger.js';

export interface CertFiles {
  certFile: string;
  keyFile: string;
}

export interface LoadedCert {
  cert: Buffer;
  key: Buffer;
  notAfter: Date;
}

/** Reads and checks a certificate/key pair; throws with a message naming the file and the problem. */
export function loadCert(files: CertFiles): LoadedCert {
  const cert = readFileSync(files.certFile);
  const key = readFileSync(files.keyFile);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw new Error(`${files.certFile} is not a PEM certificate: ${(e as Error).message}`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (e) {
    throw new Error(`${files.keyFile} does not match ${files.certFile} or is not a PEM private key: ${(e as Error).message}`);
  }
  return { cert, key, notAfter: new Date(x509.validTo) };
}

/** Polls the files' stat (works through the symlink swaps of mounted Secrets) and calls onChange with a verified pair. */
export function watchCert(files: CertFiles, intervalMs: number, log: Logger, onChange: (c: LoadedCert) => void): () => void {
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
  const timer = setInterval(() => {
    const now = stamp();
    if (now === last || now === 'missing') return;
    try {
      const loaded = loadCert(files);
      last = now;
      onChange(loaded);
      log.info({ notAfter: loaded.notAfter.toISOString() }, 'serving certificate reloaded');
    } catch (e) {
      // Likely mid-write: keep serving the old pair and look again next tick.
      log.warn({ err: (e as Error).message }, 'certificate files changed but are not a valid pair yet; keeping the current one');
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

export const TLS_OPTIONS: SecureContextOptions = { minVersion: 'TLSv1.2' };
