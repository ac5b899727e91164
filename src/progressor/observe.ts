/**
 * Pure translation of API objects into the step function's view of them. Parsing the
 * configuration here (with the same parser as the webhook) means both always agree.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { ANN_FAILED_REVISION, ANN_REQUEST, ANN_REVISION, ANN_STABLE_REVISION, ANN_STATUS } from '../config/contract.js';
import { type ClusterDefaults, parseReleaseConfig } from '../config/release-config.js';
import { parseStatus } from '../config/status.js';
import { templateHash } from '../config/template-hash.js';
import type { CanaryView, RolloutView, StableView } from './types.js';

export function stableView(d: V1Deployment, trackLabel: string, defaults: ClusterDefaults): StableView {
  const ann = d.metadata?.annotations ?? {};
  const revision = ann[ANN_REVISION];
  const stableRevision = ann[ANN_STABLE_REVISION];
  const status = parseStatus(ann[ANN_STATUS]);
  const failedRevision = ann[ANN_FAILED_REVISION];
  const request = ann[ANN_REQUEST];
  // A request is not configuration: an odd value must be reported and removed, not put the release on hold.
  let cfgAnn = ann;
  if (request !== undefined) {
    const { [ANN_REQUEST]: _, ...rest } = ann;
    cfgAnn = rest;
  }
  return {
    ...rolloutView(d, trackLabel),
    namespace: d.metadata!.namespace!,
    name: d.metadata!.name!,
    paused: d.spec?.paused === true,
    ...(d.spec?.strategy?.type === 'Recreate' ? { recreate: true as const } : {}),
    ...(revision ? { revision } : {}),
    ...(stableRevision ? { stableRevision } : {}),
    ...(status ? { status } : {}),
    ...(failedRevision ? { failedRevision } : {}),
    ...(request !== undefined ? { request } : {}),
    config: parseReleaseConfig(d.metadata!.name!, cfgAnn, defaults),
  };
}

export function canaryView(d: V1Deployment, trackLabel: string): CanaryView {
  return rolloutView(d, trackLabel);
}

function rolloutView(d: V1Deployment, trackLabel: string): RolloutView {
  const st = d.status ?? {};
  const failure = st.conditions?.find((c) => c.type === 'ReplicaFailure' && c.status === 'True');
  return {
    generation: d.metadata?.generation ?? 0,
    observedGeneration: st.observedGeneration ?? 0,
    replicas: d.spec?.replicas ?? 1,
    statusReplicas: st.replicas ?? 0,
    updatedReplicas: st.updatedReplicas ?? 0,
    availableReplicas: st.availableReplicas ?? 0,
    templateHash: templateHash(d.spec?.template, trackLabel),
    ...(failure ? { replicaFailure: failure.reason || 'ReplicaFailure' } : {}),
  };
}
