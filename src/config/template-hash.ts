/**
 * The canonical revision hash of a pod template: sha256 over sorted-key JSON of `spec.template`,
 * identical in the webhook, the progressor and across versions (it is stored in annotations).
 *
 * Left out, because they do not make a new version: `pod-template-hash` (set by the ReplicaSet
 * controller), the track label (`version: stable` vs `version: canary` is the same release), and
 * `kubectl.kubernetes.io/restartedAt` (a `kubectl rollout restart` restarts, it does not ship),
 * and `metadata.creationTimestamp` (always null in a template, but typed clients turn it into a Date).
 */
import * as crypto from 'node:crypto';
import type { V1PodTemplateSpec } from '@kubernetes/client-node';

export const HASH_LENGTH = 10;

const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';

/** sha256 of the UTF-8 text, hex. One-shot `crypto.hash` (Node >= 20.12) skips building a Hash object. */
const sha256Hex: (text: string) => string =
  typeof crypto.hash === 'function' ? (text) => crypto.hash('sha256', text, 'hex') : (text) => crypto.createHash('sha256').update(text).digest('hex');

export function templateHash(template: V1PodTemplateSpec | undefined, trackLabel: string): string {
  // Copy only what is filtered; the spec is read, never changed, so it is not cloned (hot path).
  const { creationTimestamp: _ts, labels, annotations, ...meta } = template?.metadata ?? {};
  const keptLabels = without(labels, ['pod-template-hash', trackLabel]);
  const keptAnnotations = without(annotations, [RESTARTED_AT]);
  const metadata = { ...meta, ...(keptLabels ? { labels: keptLabels } : {}), ...(keptAnnotations ? { annotations: keptAnnotations } : {}) };
  const t = { ...template, metadata: Object.keys(metadata).length > 0 ? metadata : undefined };
  return sha256Hex(canonicalJson(t)).slice(0, HASH_LENGTH);
}

function without(map: Record<string, string> | undefined, keys: string[]): Record<string, string> | undefined {
  if (!map) return undefined;
  // No prototype: a key "__proto__" (possible in a hand-made review) stays a member, as with Object.fromEntries.
  const kept: Record<string, string> = Object.create(null);
  let n = 0;
  for (const k of Object.keys(map)) {
    if (keys.includes(k)) continue;
    kept[k] = map[k]!;
    n++;
  }
  return n > 0 ? kept : undefined;
}

/**
 * JSON with object keys sorted at every depth. `null` and `undefined` members are dropped: the
 * API treats them as absent, and typed clients and raw admission JSON disagree on which they send.
 */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return scalarJson(v);
  // String building in plain loops: this runs twice per admission, on the webhook's hot path.
  if (Array.isArray(v)) {
    let out = '[';
    for (let i = 0; i < v.length; i++) out += (i ? ',' : '') + canonicalJson(v[i]);
    return `${out}]`;
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length > 1) sortKeys(keys);
  let out = '{';
  for (const k of keys) {
    const x = o[k];
    if (x === undefined || x === null) continue;
    out += (out.length > 1 ? ',' : '') + stringJson(k) + ':' + canonicalJson(x);
  }
  return `${out}}`;
}

/**
 * `keys.sort()`, in place. Insertion sort for the short key lists of a pod template (and the
 * already sorted maps the apiserver sends): Array.prototype.sort allocates a work copy per call,
 * a third of what an admission allocated (two templates, ~120 objects).
 */
function sortKeys(keys: string[]): void {
  if (keys.length > 32) {
    keys.sort();
    return;
  }
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
}

/** Exactly `JSON.stringify(v) ?? 'null'` for a non-object, without its generic path for the common cases. */
function scalarJson(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return stringJson(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'boolean':
      return v ? 'true' : 'false';
    default:
      return JSON.stringify(v) ?? 'null';
  }
}

/** Characters JSON.stringify escapes: quote, backslash, control characters, (lone) surrogates. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** `JSON.stringify(s)`: most keys and values have nothing to escape and are just quoted. */
function stringJson(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}
