/**
 * Outbound HTTP of the metric providers (Prometheus queries, webhook gates): the POST itself with
 * its deadline and cancellation, what is safe to print of a URL, why a request failed, and
 * credentials in a URL sent as basic auth.
 */

/** A URL safe to print: no user:password, no query string. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '<invalid URL>';
  }
}

/** Node's fetch hides the reason in `cause` (ECONNREFUSED, ENOTFOUND, ...). */
export function describeFetchError(e: unknown): string {
  const err = e as { message?: string; cause?: { code?: string; message?: string } };
  const cause = err?.cause;
  if (cause?.code) return `${cause.code}${cause.message && !cause.message.includes(cause.code) ? ` (${cause.message})` : ''}`;
  if (cause?.message) return cause.message;
  return err?.message ?? String(e);
}

/**
 * Why the URL's user or password cannot be decoded (a "%" that is not a percent-escape of UTF-8,
 * as in a password "50%off" written as is), or undefined. Never quotes either.
 */
export function credentialsProblem(u: URL): string | undefined {
  for (const [part, value] of [['user', u.username], ['password', u.password]] as const) {
    try {
      decodeURIComponent(value);
    } catch {
      return `the ${part} in the URL has a "%" that is not a percent-escape (%XX of UTF-8); write a literal % as %25`;
    }
  }
  return undefined;
}

/**
 * Takes `user:password@` out of the URL (fetch refuses URLs with credentials) and returns it as
 * an Authorization header value, or undefined if the URL has none. Throws, with
 * credentialsProblem()'s message, when they cannot be decoded.
 */
export function takeBasicAuth(u: URL): string | undefined {
  if (!u.username && !u.password) return undefined;
  const problem = credentialsProblem(u);
  if (problem) throw new Error(problem);
  const value = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
  u.username = '';
  u.password = '';
  return value;
}

/**
 * Node's codes for a TLS certificate it does not accept. The server answered, so "unreachable"
 * would send the user looking at the network; the fix is the progressor's trust store.
 */
const UNTRUSTED_CERT = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** What to do about an untrusted certificate, for the messages of the providers. */
export const UNTRUSTED_FIX = 'if it is signed by your own CA, give the progressor that CA (environment variable NODE_EXTRA_CA_CERTS=/path/to/ca.pem); if it has expired or names another host, fix the certificate';

/** `truncated`: the answer was longer than the caller's maxBytes; `text` is its beginning. */
export type PostResult =
  | { ok: boolean; status: number; text: string; truncated?: true }
  | { failed: 'timeout' }
  | { failed: 'cancelled' }
  | { failed: 'unreachable'; detail: string }
  | { failed: 'untrusted'; detail: string };

/**
 * POSTs and reads the whole answer, giving up after timeoutMs or when `signal` aborts. That signal
 * is usually the progressor's one signal for its whole life, so it is linked by hand and unlinked
 * when the call ends: an 'abort' listener left on it, or AbortSignal.any()'s entry (kept on Node 20
 * until the signal aborts), would add up with every call.
 *
 * At most `maxBytes` of the answer are read: the servers are the user's (any URL in an analysis)
 * and one progressor serves every release, so a gate answering hundreds of MB (a log, a file, a
 * query over every series) must not take its memory. The rest is not read; the connection goes.
 */
export async function post(
  url: string | URL,
  init: { headers: Record<string, string>; body: BodyInit; redirect: RequestRedirect },
  timeoutMs: number,
  signal?: AbortSignal,
  maxBytes = Number.POSITIVE_INFINITY,
): Promise<PostResult> {
  const call = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    call.abort();
  }, timeoutMs);
  const cancel = () => call.abort();
  if (signal?.aborted) cancel();
  else signal?.addEventListener('abort', cancel, { once: true });
  try {
    const res = await fetch(url, { ...init, method: 'POST', signal: call.signal });
    const { text, truncated } = await readAtMost(res, maxBytes);
    return { ok: res.ok, status: res.status, text, ...(truncated ? { truncated } : {}) };
  } catch (e) {
    if (timedOut) return { failed: 'timeout' };
    if (signal?.aborted) return { failed: 'cancelled' };
    const code = (e as { cause?: { code?: unknown } })?.cause?.code;
    if (typeof code === 'string' && UNTRUSTED_CERT.has(code)) return { failed: 'untrusted', detail: describeFetchError(e) };
    return { failed: 'unreachable', detail: describeFetchError(e) };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', cancel);
  }
}

/** The body's first `max` bytes as text (cancelling the rest), and whether there was more. */
async function readAtMost(res: Response, max: number): Promise<{ text: string; truncated: boolean }> {
  if (!res.body) return { text: '', truncated: false };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { text: Buffer.concat(chunks).toString('utf8'), truncated: false };
    if (size + value.byteLength > max) {
      chunks.push(value.subarray(0, max - size));
      await reader.cancel().catch(() => undefined);
      return { text: Buffer.concat(chunks).toString('utf8'), truncated: true };
    }
    chunks.push(value);
    size += value.byteLength;
  }
}
