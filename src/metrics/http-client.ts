/**
 * Outbound HTTP of the metric providers (Prometheus queries, webhook gates): what is safe to print
 * of a URL, why a request failed, and credentials in a URL sent as basic auth.
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
