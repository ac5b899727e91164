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
  const scan = scanReview(text);
  if (scan.depth > MAX_JSON_DEPTH) throw new EnvelopeError(400, `JSON nested ${scan.depth} levels deep; at most ${MAX_JSON_DEPTH} are accepted`);
  let review: unknown;
  try {
    review = JSON.parse(withoutUnread(text, scan.unread));
  } catch {
    // The error, with positions, of what was sent (the reduced text is never shown).
    try {
      JSON.parse(text);
    } catch (e) {
      throw new EnvelopeError(400, `body is not JSON (${(e as Error).message}); expected an AdmissionReview (admission.k8s.io/v1)`);
    }
    review = JSON.parse(text);
  }
  if (review === null || typeof review !== 'object' || Array.isArray(review)) {
    throw new EnvelopeError(400, 'body is not a JSON object; expected an AdmissionReview (admission.k8s.io/v1)');
  }
  const r = review as Record<string, unknown>;
  if (r.apiVersion !== 'admission.k8s.io/v1' || r.kind !== 'AdmissionReview') {
    throw new EnvelopeError(
      400,
      `expected apiVersion admission.k8s.io/v1, kind AdmissionReview; got apiVersion ${JSON.stringify(r.apiVersion)}, kind ${JSON.stringify(r.kind)}. Set admissionReviewVersions: ["v1"] in the webhook configuration`,
    );
  }
  const req = r.request;
  if (req === null || typeof req !== 'object' || Array.isArray(req)) throw new EnvelopeError(400, 'AdmissionReview has no request');
  const q = req as Record<string, unknown>;
  if (typeof q.uid !== 'string' || q.uid === '') throw new EnvelopeError(400, 'AdmissionReview request has no uid');
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

export interface ReviewScan {
  /** Maximum nesting of the text. */
  depth: number;
  /**
   * Start and end offsets (pairs, in order) of the members nothing in kube-canary reads:
   * `status` and `metadata.managedFields` of `request.object` and `request.oldObject`. They are
   * over a third of a typical AdmissionReview, and parsing them would be the webhook's largest
   * single cost (bench/README). Empty unless the text is a complete, balanced JSON text.
   */
  unread: number[];
}

// What a container is, by the key that opened it: only the path to the unread members is tracked.
const OTHER = 0;
const REVIEW = 1;
const REQUEST = 2;
const OBJECT = 3;
const METADATA = 4;
const UNREAD = 5;
/** Containers tracked from the top: the deepest unread member, request.object.metadata.managedFields, is the fifth. */
const TRACKED = 5;

/** Whether the string from the quote at `start` to the quote at `end` is `"key"`. */
function isKey(text: string, start: number, end: number, key: string): boolean {
  return end - start === key.length + 1 && text.startsWith(key, start + 1);
}

/** The container a key opens, given the container the key is in. */
function tagOf(text: string, parent: number, start: number, end: number): number {
  switch (parent) {
    case REVIEW:
      return isKey(text, start, end, 'request') ? REQUEST : OTHER;
    case REQUEST:
      return isKey(text, start, end, 'object') || isKey(text, start, end, 'oldObject') ? OBJECT : OTHER;
    case OBJECT:
      return isKey(text, start, end, 'metadata') ? METADATA : isKey(text, start, end, 'status') ? UNREAD : OTHER;
    case METADATA:
      return isKey(text, start, end, 'managedFields') ? UNREAD : OTHER;
    default:
      return OTHER;
  }
}

/**
 * One pass over a JSON text without parsing it: its nesting depth, and where the members
 * kube-canary never reads are. Strings are jumped over with `indexOf` (most of an object's text is
 * in its strings), so the per-character loop only sees the structure; a quote is escaped when an
 * odd run of backslashes precedes it. A key is only looked at inside the few containers on the way
 * to an unread member.
 */
export function scanReview(text: string): ReviewScan {
  let depth = 0;
  let max = 0;
  let balanced = true;
  // The tag, and for an unread member its start, of each open container up to TRACKED deep.
  const tags = new Array<number>(TRACKED).fill(OTHER);
  const starts = new Array<number>(TRACKED).fill(-1);
  let inner = OTHER; // the innermost open container's tag
  const unread: number[] = [];
  let pendingTag = OTHER;
  let pendingStart = -1;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      let end = i;
      do {
        end = text.indexOf('"', end + 1);
        if (end < 0) return { depth: max, unread: [] }; // unterminated string: JSON.parse reports it
      } while (escapedQuote(text, end));
      if (inner !== OTHER && inner !== UNREAD) {
        // A value string sets a tag too, but the comma or bracket after it comes before any container.
        pendingTag = tagOf(text, inner, i, end);
        pendingStart = i;
      }
      i = end;
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      inner = depth === 0 ? (c === 123 ? REVIEW : OTHER) : pendingTag;
      if (depth >= 0 && depth < TRACKED) {
        tags[depth] = inner;
        starts[depth] = inner === UNREAD ? pendingStart : -1;
      }
      pendingTag = OTHER;
      if (++depth > max) max = depth;
    } else if (c === 125 /* } */ || c === 93 /* ] */) {
      depth--;
      if (depth < 0) {
        balanced = false;
        inner = OTHER;
      } else {
        if (depth < TRACKED && starts[depth]! >= 0) {
          unread.push(starts[depth]!, i + 1);
          starts[depth] = -1;
        }
        inner = depth > 0 && depth <= TRACKED ? tags[depth - 1]! : OTHER;
      }
      pendingTag = OTHER;
    } else if (c === 44 /* , */) pendingTag = OTHER;
  }
  return { depth: max, unread: balanced && depth === 0 ? unread : [] };
}

/** Whether the quote at `q` (inside a string) is escaped; the run cannot pass the opening quote. */
function escapedQuote(text: string, q: number): boolean {
  let k = q - 1;
  while (text.charCodeAt(k) === 92 /* \ */) k--;
  return ((q - 1 - k) & 1) === 1;
}

/** The text with the given members removed, each with the comma that separated it from a neighbour. */
function withoutUnread(text: string, unread: number[]): string {
  if (unread.length === 0) return text;
  let out = '';
  let from = 0;
  for (let k = 0; k < unread.length; k += 2) {
    let start = unread[k]!;
    let end = unread[k + 1]!;
    let after = end;
    while (isSpace(text.charCodeAt(after))) after++;
    if (text.charCodeAt(after) === 44 /* , */) end = after + 1;
    else {
      let before = start - 1;
      while (isSpace(text.charCodeAt(before))) before--;
      if (text.charCodeAt(before) === 44) start = before;
    }
    out += text.slice(from, start);
    from = end;
  }
  return out + text.slice(from);
}

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

export function reviewResponse(response: AdmissionResponse): object {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}
