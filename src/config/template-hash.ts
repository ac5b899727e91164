/**
 * The canonical revision hash of a pod template: sha256 over sorted-key JSON of `spec.template`,
 * identical in the webhook, the progressor and across versions (it is stored in annotations).
 *
 * Left out, because they do not make a new version: `pod-template-hash` (set by the ReplicaSet
 * controller), the track label (`version: stable` vs `version: canary` is the same release), and
 * `kubectl.kubernetes.io/restartedAt` (a `kubectl rollout restart` restarts, it does not ship),
 * and `metadata.creationTimestamp` (always null in a template, but typed clients turn it into a Date).
 */
import { createHash } from 'node:crypto';
import type { V1PodTemplateSpec } from '@kubernetes/client-node';

export const HASH_LENGTH = 10;
const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';

export function templateHash(template: V1PodTemplateSpec | undefined, trackLabel: string): string {
  const t = structuredClone(template ?? {}) as V1PodTemplateSpec;
  if (t.metadata?.labels) {
    delete t.metadata.labels['pod-template-hash'];
    delete t.metadata.labels[trackLabel];
    if (Object.keys(t.metadata.labels).length === 0) delete t.metadata.labels;
  }
  if (t.metadata?.annotations) {
    delete t.metadata.annotations[RESTARTED_AT];
    if (Object.keys(t.metadata.annotations).length === 0) delete t.metadata.annotations;
  }
  if (t.metadata) delete t.metadata.creationTimestamp;
  if (t.metadata && Object.keys(t.metadata).length === 0) delete t.metadata;
  return createHash('sha256').update(canonicalJson(t)).digest('hex').slice(0, HASH_LENGTH);
}

/**
 * JSON with object keys sorted at every depth. `null` and `undefined` members are dropped: the
 * API treats them as absent, and typed clients and raw admission JSON disagree on which they send.
 */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(v as Record<string, unknown>)
    .filter(([, x]) => x !== undefined && x !== null)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
}
