/**
 * The `<name>-canary` Deployment, built (purely) from the stable Deployment, which holds the
 * captured release template while it is paused.
 */
import type { V1Deployment, V1LabelSelector } from '@kubernetes/client-node';
import { LABEL_ENABLED, LABEL_ROLE, LABEL_STABLE_NAME, ROLE_CANARY, TRACK_CANARY, canaryName } from '../config/contract.js';

/**
 * Replica rule: enough canary pods to carry `maxWeight`% of the stable Deployment's load at the
 * stable's per-pod load, i.e. ceil(stable.spec.replicas * maxWeight / 100), and at least 1 so
 * that there is something to analyse even for a stable Deployment scaled to one pod (or zero).
 */
export function canaryReplicas(stableReplicas: number, maxWeight: number): number {
  return Math.max(1, Math.ceil((stableReplicas * maxWeight) / 100));
}

/**
 * Canary selector: the stable selector with the track label set to `canary`, so the canary's
 * ReplicaSets never match stable pods (and the DestinationRule's canary subset matches exactly
 * these pods). A matchExpression on the track label would contradict it and is dropped.
 */
export function canarySelector(stable: V1LabelSelector | undefined, trackLabel: string): V1LabelSelector {
  const sel: V1LabelSelector = { matchLabels: { ...(stable?.matchLabels ?? {}), [trackLabel]: TRACK_CANARY } };
  const exprs = (stable?.matchExpressions ?? []).filter((e) => e.key !== trackLabel);
  if (exprs.length > 0) sel.matchExpressions = structuredClone(exprs);
  return sel;
}

export function buildCanary(stable: V1Deployment, trackLabel: string, replicas: number): V1Deployment {
  const name = stable.metadata!.name!;
  const template = structuredClone(stable.spec!.template);
  template.metadata = { ...(template.metadata ?? {}), labels: { ...(template.metadata?.labels ?? {}), [trackLabel]: TRACK_CANARY } };
  delete template.metadata.creationTimestamp;
  const labels: Record<string, string> = { ...(stable.metadata?.labels ?? {}) };
  // No opt-in label: the webhook must never capture a canary, nor the informer treat it as stable.
  delete labels[LABEL_ENABLED];
  labels[LABEL_ROLE] = ROLE_CANARY;
  labels[LABEL_STABLE_NAME] = name;
  const s = stable.spec!;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: canaryName(name),
      namespace: stable.metadata!.namespace!,
      labels,
      // Owned, not controlled, by the stable Deployment: deleting it garbage-collects the canary.
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name, uid: stable.metadata!.uid!, controller: false, blockOwnerDeletion: true }],
    },
    spec: {
      replicas,
      selector: canarySelector(s.selector, trackLabel),
      template,
      paused: false,
      ...(s.strategy ? { strategy: structuredClone(s.strategy) } : {}),
      ...(s.minReadySeconds !== undefined ? { minReadySeconds: s.minReadySeconds } : {}),
      ...(s.progressDeadlineSeconds !== undefined ? { progressDeadlineSeconds: s.progressDeadlineSeconds } : {}),
      revisionHistoryLimit: 1,
    },
  };
}
