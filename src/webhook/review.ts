/**
 * The AdmissionReview envelope: parsing the raw body into a request the decision can trust, and
 * building the response. Anything malformed becomes an `EnvelopeError` (a 4xx), never a crash.
 */
import type { V1Deployment } from '@kubernetes/client-node';

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource?: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  userInfo: { username?: string; uid?: string; groups?: string[] };
  object?: V1Deployment | Record<string, unknown>;
  oldObject?: V1Deployment | Record<string, unknown>;
  dryRun?: boolean;
  options?: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string; reason?: string };
  patchType?: 'JSONPatch';
  patch?: string;
  warnings?: string[];
}

export class EnvelopeError extends Error {
  constructor(
    readonly httpStatus: number,
    message: string,
  ) {
    super(message);
  }
}

/** Deeper than any real Deployment; bounds the recursion of everything after parsing. */
export const MAX_JSON_DEPTH = 64;

export function parseReview(body: Buffer | string | undefined): AdmissionRequest {
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : (body ?? '');
  if (text.trim() === '') throw new EnvelopeError(400, 'empty body: expected an AdmissionReview (admission.k8s.io/v1) as JSON');
  const depth = jsonDepth(text);
  if (depth > MAX_JSON_DEPTH) throw new EnvelopeError(400, `JSON nested ${depth} levels deep; at most ${MAX_JSON_DEPTH} are accepted`);
  let review: unknown;
  try {
    review = JSON.parse(text);
  } catch (e) {
    throw new EnvelopeError(400, `body is not JSON (${(e as Error).message}); expected an AdmissionReview (admission.k8s.io/v1)`);
  }
  if (review === null || typeof review !== 'object' || Array.isArray(review)) {
    throw new EnvelopeError(400, 'body is not a JSON object; expected an AdmissionReview (admission.k8s.io/v1)');
  }
  const r = review as Record<string, unknown>;
  if (r.apiVersion !== 'admission.k8s.io/v1' || r.kind !== 'AdmissionReview') {
    // Only another version of AdmissionReview is fixed in the webhook configuration.
    const fix = r.kind === 'AdmissionReview' ? '. Set admissionReviewVersions: ["v1"] in the webhook configuration' : '';
    throw new EnvelopeError(400, `expected apiVersion admission.k8s.io/v1, kind AdmissionReview; got apiVersion ${JSON.stringify(r.apiVersion)}, kind ${JSON.stringify(r.kind)}${fix}`);
  }
  const req = r.request;
  if (req === null || typeof req !== 'object' || Array.isArray(req)) throw new EnvelopeError(400, 'AdmissionReview has no request');
  const q = req as Record<string, unknown>;
  if (q.uid === undefined || q.uid === '') throw new EnvelopeError(400, 'AdmissionReview request has no uid');
  if (typeof q.uid !== 'string') throw new EnvelopeError(400, `AdmissionReview request.uid is ${JSON.stringify(q.uid)}; expected a string`);
  if (typeof q.operation !== 'string' || !['CREATE', 'UPDATE', 'DELETE', 'CONNECT'].includes(q.operation)) {
    throw new EnvelopeError(400, `AdmissionReview request has operation ${JSON.stringify(q.operation)}; expected CREATE, UPDATE, DELETE or CONNECT`);
  }
  const kind = q.kind as Record<string, unknown> | undefined;
  if (!kind || typeof kind.kind !== 'string') throw new EnvelopeError(400, 'AdmissionReview request has no kind');
  return {
    ...(q as unknown as AdmissionRequest),
    kind: { group: String(kind.group ?? ''), version: String(kind.version ?? ''), kind: kind.kind },
    userInfo: (q.userInfo as AdmissionRequest['userInfo']) ?? {},
  };
}

/**
 * Maximum nesting of a JSON text, found by one pass over it without parsing. Strings are jumped
 * over with `indexOf` (most of an object's text is in its strings), so the per-character loop
 * only sees the structure; a quote is escaped when an odd run of backslashes precedes it.
 */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      let end = i;
      do {
        end = text.indexOf('"', end + 1);
        if (end < 0) return max; // unterminated string: JSON.parse reports it
      } while (escapedQuote(text, end));
      i = end;
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (++depth > max) max = depth;
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
  }
  return max;
}

/** Whether the quote at `q` (inside a string) is escaped; the run cannot pass the opening quote. */
function escapedQuote(text: string, q: number): boolean {
  let k = q - 1;
  while (text.charCodeAt(k) === 92 /* \ */) k--;
  return ((q - 1 - k) & 1) === 1;
}

export function reviewResponse(response: AdmissionResponse): object {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}
