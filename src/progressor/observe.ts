/**
 * Pure translation of API objects into the step function's view of them. Parsing the
 * configuration here (with the same parser as the webhook) means both always agree.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { ANN_REVISION, ANN_STABLE_REVISION, ANN_STATUS } from '../config/contract.js';
import { type ClusterDefaults, parseReleaseConfig } from '../config/release-config.js';
import { parseStatus } from '../config/status.js';
import { templateHash } from '../config/template-hash.js';
import type { CanaryView, StableView } from './types.js';

export function stableView(d: V1Deployment, trackLabel: string, defaults: ClusterDefaults): StableView {
  const ann = d.metadata?.annotations ?? {};
  const st = d.status ?? {};
  const revision = ann[ANN_REVISION];
  const stableRevision = ann[ANN_STABLE_REVISION];
  const status = parseStatus(ann[ANN_STATUS]);
  return {
    namespace: d.metadata!.namespace!,
    name: d.metadata!.name!,
    generation: d.metadata?.generation ?? 0,
    observedGeneration: st.observedGeneration ?? 0,
    paused: d.spec?.paused === true,
    replicas: d.spec?.replicas ?? 1,
    statusReplicas: st.replicas ?? 0,
    updatedReplicas: st.updatedReplicas ?? 0,
    availableReplicas: st.availableReplicas ?? 0,
    templateHash: templateHash(d.spec?.template, trackLabel),
    ...(revision ? { revision } : {}),
    ...(stableRevision ? { stableRevision } : {}),
    ...(status ? { status } : {}),
    config: parseReleaseConfig(d.metadata!.name!, ann, defaults),
  };
}

export function canaryView(d: V1Deployment, trackLabel: string): CanaryView {
  const st = d.status ?? {};
  return {
    templateHash: templateHash(d.spec?.template, trackLabel),
    replicas: d.spec?.replicas ?? 1,
    generation: d.metadata?.generation ?? 0,
    observedGeneration: st.observedGeneration ?? 0,
    updatedReplicas: st.updatedReplicas ?? 0,
    availableReplicas: st.availableReplicas ?? 0,
  };
}
