/**
 * Which Deployments the webhook may act on. The webhook configuration's selectors already filter,
 * but the webhook re-checks so that a misconfigured selector cannot pause unrelated Deployments.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { LABEL_ENABLED, LABEL_ROLE, ROLE_CANARY, SYSTEM_NAMESPACES } from '../config/contract.js';

/** `label`: called by the entry that selects Deployments by their label (`POST /mutate`). `namespace`: by the entry that selects opted-in Namespaces (`POST /mutate/namespace`). */
export type OptInSource = 'label' | 'namespace';

export type Scope = { inScope: true } | { inScope: false; reason: string };

/** Why kube-canary never manages this Deployment whatever its labels say (a system or its own namespace, a canary), if it does not. */
export function neverManaged(d: V1Deployment, namespace: string, ownNamespace: string): string | undefined {
  if ((SYSTEM_NAMESPACES as readonly string[]).includes(namespace) || namespace === ownNamespace) return `namespace ${namespace} is never managed by kube-canary`;
  if (d.metadata?.labels?.[LABEL_ROLE] === ROLE_CANARY) return 'canary Deployments are managed by the progressor';
  return undefined;
}

export function scopeOf(d: V1Deployment, namespace: string, source: OptInSource, ownNamespace: string): Scope {
  const never = neverManaged(d, namespace, ownNamespace);
  if (never) return { inScope: false, reason: never };
  const enabled = d.metadata?.labels?.[LABEL_ENABLED];
  if (enabled === 'false') return { inScope: false, reason: `${LABEL_ENABLED}=false opts this Deployment out` };
  if (source === 'label' && enabled !== 'true') return { inScope: false, reason: `not labelled ${LABEL_ENABLED}=true` };
  return { inScope: true };
}

/** Whether the Deployment was already opted in before this update (so this update is not the one that opts it in). */
export function wasOptedIn(old: V1Deployment | undefined, source: OptInSource): boolean {
  if (!old) return false;
  const enabled = old.metadata?.labels?.[LABEL_ENABLED];
  if (old.metadata?.labels?.[LABEL_ROLE] === ROLE_CANARY) return false;
  return source === 'label' ? enabled === 'true' : enabled !== 'false';
}
