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
 * Takes `user:password@` out of the URL (fetch refuses URLs with credentials) and returns it as
 * an Authorization header value, or undefined if the URL has none.
 */
export function takeBasicAuth(u: URL): string | undefined {
  if (!u.username && !u.password) return undefined;
  const value = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
  u.username = '';
  u.password = '';
  return value;
}

export type PostResult = { ok: boolean; status: number; text: string } | { failed: 'timeout' } | { failed: 'cancelled' } | { failed: 'unreachable'; detail: string };

/**
 * POSTs and reads the whole answer, giving up after timeoutMs or when `signal` aborts. That signal
 * is usually the progressor's one signal for its whole life, so it is linked by hand and unlinked
 * when the call ends: an 'abort' listener left on it, or AbortSignal.any()'s entry (kept on Node 20
 * until the signal aborts), would add up with every call.
 */
export async function post(url: string | URL, init: { headers: Record<string, string>; body: BodyInit; redirect: RequestRedirect }, timeoutMs: number, signal?: AbortSignal): Promise<PostResult> {
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
    return { ok: res.ok, status: res.status, text: await res.text() };
  } catch (e) {
    if (timedOut) return { failed: 'timeout' };
    if (signal?.aborted) return { failed: 'cancelled' };
    return { failed: 'unreachable', detail: describeFetchError(e) };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', cancel);
  }
}
