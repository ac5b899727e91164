/**
 * Failures before there is a request to answer: TLS handshakes that fail, malformed HTTP, requests
 * cut off by the timeouts. Node handles them silently by default, which hides the most common
 * set-up mistake of a webhook (a caBundle in the webhook configuration that is not the CA of the
 * serving certificate: the apiserver's handshakes fail, its kubectl users see "failed calling
 * webhook", and the webhook's own log says nothing). Each is counted, and logged with what to
 * check, at most once a minute per kind so that a scanner or a misconfigured client cannot flood
 * the log.
 */
import type { Server } from 'node:https';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from '../kube/logger.js';
import type { WebhookMetrics } from './metrics.js';

export type ConnectionErrorKind = 'tls' | 'http' | 'timeout' | 'disconnect';

export interface ClassifiedError {
  kind: ConnectionErrorKind;
  /** The status line Node would answer with, when the connection can still take one. */
  status?: string;
  /** What to check, for the log. */
  hint?: string;
}

/** What a failure is and what it means for the person reading the log. Pure. */
export function classifyConnectionError(err: NodeJS.ErrnoException): ClassifiedError {
  const code = err.code ?? '';
  const text = err.message ?? '';
  // The peer left (a TCP probe, a client that gave up): nothing to fix on this side.
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT' || /disconnected before secure TLS connection/.test(text)) return { kind: 'disconnect' };
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return { kind: 'timeout', status: '408 Request Timeout', hint: 'the request was not received whole within the time the apiserver waits for a webhook (30 s at most)' };
  }
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return { kind: 'timeout', hint: 'the client connected but did not finish a TLS handshake within 10 s' };
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || /SSL routines/.test(text)) {
    if (/alert (unknown ca|bad certificate|certificate unknown)/i.test(text)) {
      return { kind: 'tls', hint: "the client does not trust this certificate: the webhook configuration's caBundle must be the CA that signed --tls-cert, and the certificate must name the host the client dials (kube-canary certs --hosts)" };
    }
    if (/http request/i.test(text)) return { kind: 'tls', hint: 'plain HTTP was sent to this HTTPS port; the webhook configuration must use https' };
    if (/wrong version number|unsupported protocol|no shared cipher|version too low|no suitable|inappropriate fallback/i.test(text)) {
      return { kind: 'tls', hint: 'the client offers no TLS version or cipher this server accepts (TLS 1.2 with ECDHE and AES-GCM or ChaCha20-Poly1305, or TLS 1.3)' };
    }
    return { kind: 'tls' };
  }
  if (code === 'HPE_HEADER_OVERFLOW') return { kind: 'http', status: '431 Request Header Fields Too Large' };
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return { kind: 'http', status: '413 Payload Too Large' };
  return { kind: 'http', status: '400 Bad Request' };
}

/**
 * Counts and logs connection-level failures, and answers malformed requests as Node would (status
 * line, then close). The once-a-minute limit is per kind and cause, so that a noisy cause (a
 * scanner speaking plain HTTP) cannot keep a rarer one (the caBundle) out of the log.
 */
export function watchConnectionErrors(server: Server, metrics: WebhookMetrics, log: Logger, intervalMs = 60_000): void {
  const lastLogged = new Map<string, number>();
  const suppressed = new Map<string, number>();
  const report = (c: ClassifiedError, err: NodeJS.ErrnoException, remote: string | undefined) => {
    metrics.connectionErrors.inc({ kind: c.kind });
    if (c.kind === 'disconnect') return;
    // Codes are a fixed set (Node's and OpenSSL's), so the maps stay small.
    const cause = `${c.kind}:${err.code ?? c.hint ?? ''}`;
    const now = Date.now();
    const last = lastLogged.get(cause);
    if (last !== undefined && now - last < intervalMs) {
      suppressed.set(cause, (suppressed.get(cause) ?? 0) + 1);
      return;
    }
    lastLogged.set(cause, now);
    const since = suppressed.get(cause) ?? 0;
    suppressed.delete(cause);
    log.warn(
      { kind: c.kind, err: (err as { reason?: string }).reason ?? err.message, remote, ...(c.hint ? { hint: c.hint } : {}), ...(since ? { notLoggedSinceLast: since } : {}) },
      c.kind === 'tls' ? 'TLS handshake failed' : c.kind === 'timeout' ? 'connection timed out before a whole request arrived' : 'malformed HTTP request',
    );
  };
  // https.Server re-emits a failed handshake (tlsClientError) as clientError: this one listener sees both.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const c = classifyConnectionError(err);
    // Node's own bookkeeping (its default handler reads the same): whether an answer has started on this connection.
    const answered = (socket as Duplex & { _httpMessage?: { _headerSent?: boolean } | null })._httpMessage?._headerSent === true;
    // An answered request (refused with a 415, say) is counted as an admission already; what the
    // parser then trips over in its body is not another failure. One whose body stalled is.
    if (!answered) report(c, err, (socket as TLSSocket).remoteAddress);
    if (c.status && socket.writable && !answered) socket.write(`HTTP/1.1 ${c.status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroy();
  });
}
