/**
 * The AdmissionReview envelope: parsing the raw body into a request the decision can trust, and
 * building the response. Anything malformed becomes an `EnvelopeError` (a 4xx), never a crash.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { kindOf, show } from '../config/show.js';

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
  const decoded = Buffer.isBuffer(body) ? body.toString('utf8') : (body ?? '');
  // A byte order mark (some editors write one into a hand-made review) is not JSON, and is invisible in a message.
  const text = decoded.charCodeAt(0) === 0xfeff ? decoded.slice(1) : decoded;
  if (text.trim() === '') throw new EnvelopeError(400, 'empty body: expected an AdmissionReview (admission.k8s.io/v1) as JSON');
  const depth = jsonDepth(text);
  if (depth > MAX_JSON_DEPTH) throw new EnvelopeError(400, `JSON nested ${depth} levels deep; at most ${MAX_JSON_DEPTH} are accepted`);
  let review: unknown;
  try {
    review = JSON.parse(text);
  } catch (e) {
    throw new EnvelopeError(400, `body is not JSON (${syntaxProblem((e as Error).message)}); expected an AdmissionReview (admission.k8s.io/v1)`);
  }
  if (review === null || typeof review !== 'object' || Array.isArray(review)) {
    throw new EnvelopeError(400, 'body is not a JSON object; expected an AdmissionReview (admission.k8s.io/v1)');
  }
  const r = review as Record<string, unknown>;
  if (r.apiVersion !== 'admission.k8s.io/v1' || r.kind !== 'AdmissionReview') {
    // Only another version of AdmissionReview is fixed in the webhook configuration.
    const fix = r.kind === 'AdmissionReview' ? '. Set admissionReviewVersions: ["v1"] in the webhook configuration' : '';
    throw new EnvelopeError(400, `expected apiVersion admission.k8s.io/v1, kind AdmissionReview; got apiVersion ${show(r.apiVersion)}, kind ${show(r.kind)}${fix}`);
  }
  const req = r.request;
  if (req === null || typeof req !== 'object' || Array.isArray(req)) throw new EnvelopeError(400, 'AdmissionReview has no request');
  const q = req as Record<string, unknown>;
  if (q.uid === undefined || q.uid === '') throw new EnvelopeError(400, 'AdmissionReview request has no uid');
  // These reach logs and messages: they must be what the apiserver sends (strings, of a sane length).
  for (const [field, v] of [['uid', q.uid], ['name', q.name], ['namespace', q.namespace], ['subResource', q.subResource]] as const) {
    const problem = textProblem(v, field === 'uid');
    if (problem) throw new EnvelopeError(400, `AdmissionReview request.${field} ${problem}`);
  }
  const userInfo = q.userInfo as Record<string, unknown> | undefined;
  if (userInfo !== undefined && (userInfo === null || typeof userInfo !== 'object' || Array.isArray(userInfo))) {
    throw new EnvelopeError(400, `AdmissionReview request.userInfo is ${kindOf(userInfo)}; expected an object`);
  }
  if (q.dryRun !== undefined && typeof q.dryRun !== 'boolean') throw new EnvelopeError(400, `AdmissionReview request.dryRun is ${kindOf(q.dryRun)}; expected true or false`);
  const userProblem = textProblem(userInfo?.username, false);
  if (userProblem) throw new EnvelopeError(400, `AdmissionReview request.userInfo.username ${userProblem}`);
  if (typeof q.operation !== 'string' || !['CREATE', 'UPDATE', 'DELETE', 'CONNECT'].includes(q.operation)) {
    throw new EnvelopeError(400, `AdmissionReview request has operation ${show(q.operation)}; expected CREATE, UPDATE, DELETE or CONNECT`);
  }
  const kind = q.kind as Record<string, unknown> | undefined;
  if (!kind || typeof kind.kind !== 'string') throw new EnvelopeError(400, 'AdmissionReview request has no kind');
  return {
    ...(q as unknown as AdmissionRequest),
    kind: { group: String(kind.group ?? ''), version: String(kind.version ?? ''), kind: kind.kind },
    userInfo: (q.userInfo as AdmissionRequest['userInfo']) ?? {},
  };
}

/** Longest name, uid or username accepted: Kubernetes names are at most 253 characters, usernames rarely more. */
const MAX_TEXT = 1024;

/** Why an optional string member is unusable, or undefined; what is quoted back is cut short. */
function textProblem(v: unknown, required: boolean): string | undefined {
  if (v === undefined || v === null) return required ? 'is missing' : undefined;
  // The value itself is not quoted back: an object in a user name could carry a token, and this message is logged.
  if (typeof v !== 'string') return `is ${kindOf(v)}; expected a string`;
  return v.length > MAX_TEXT ? `is ${v.length} characters long; at most ${MAX_TEXT} are accepted` : undefined;
}

/**
 * V8's reason without the excerpt of the body it quotes ("Unexpected token 'h', "...value":hunter2"...
 * is not valid JSON"): a body may carry secrets, and this message is logged and answered. Its
 * other reasons quote nothing ("Expected ':' after property name in JSON at position 5").
 */
function syntaxProblem(message: string): string {
  const cut = message.search(/, (\.\.\.)?"/);
  const reason = cut >= 0 ? message.slice(0, cut) : message;
  // Any other quote would be an excerpt in a shape this does not know: say less rather than leak.
  return reason.includes('"') ? 'a syntax error' : reason;
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
