/** Small helpers over the client's ApiException, so callers test meaning, not shapes. */
export function statusCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown; response?: { statusCode?: unknown } } | null;
  if (!e || typeof e !== 'object') return undefined;
  for (const v of [e.code, e.statusCode, e.response?.statusCode]) if (typeof v === 'number') return v;
  return undefined;
}

export const isNotFound = (err: unknown) => statusCode(err) === 404;
/** A lost optimistic-concurrency race: resourceVersion conflict (409) or a failed JSON-patch `test` (422). */
export const isConflict = (err: unknown) => statusCode(err) === 409 || statusCode(err) === 422;

/** One line for logs and Events: the API's own message when there is one. */
export function errorMessage(err: unknown): string {
  const e = err as { body?: unknown; message?: unknown } | null;
  let body = e?.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      /* keep the text */
    }
  }
  const apiMsg = body && typeof body === 'object' ? (body as { message?: unknown }).message : undefined;
  if (typeof apiMsg === 'string') return apiMsg;
  if (e && typeof e.message === 'string') return e.message.split('\n')[0]!.slice(0, 300);
  return String(err);
}
