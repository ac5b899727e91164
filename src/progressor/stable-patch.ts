/**
 * The one write to the stable Deployment per reconcile: a JSON patch that starts with a `test`
 * of the observed resourceVersion (optimistic concurrency: a stale writer, e.g. a progressor
 * that lost its lease, gets 409/422 and changes nothing) and then applies unpause, template
 * restore, annotation cleanup (incl. the one-shot kube-canary.io/request) and the status
 * together, so a transition is atomic and a request is acted on exactly once.
 */
import type { V1Deployment, V1PodTemplateSpec } from '@kubernetes/client-node';
import type { Operation } from 'fast-json-patch';
import { ANN_FAILED_REVISION, ANN_REQUEST, ANN_REVISION, ANN_STABLE_REVISION, ANN_STATUS } from '../config/contract.js';
import { serializeStatus } from '../config/status.js';
import { pointer } from '../kube/json-patch.js';
import { type Action, STABLE_PATCH_ACTIONS } from './types.js';

const STABLE_PATCH = new Set<string>(STABLE_PATCH_ACTIONS);
export const isStablePatchAction = (a: Action): boolean => STABLE_PATCH.has(a.type);

const annPath = (key: string) => pointer('metadata', 'annotations', key);

/** A ReplicaSet's template as a Deployment template: without the controller's pod-template-hash. */
export function deploymentTemplateFromReplicaSet(t: V1PodTemplateSpec): V1PodTemplateSpec {
  const out = structuredClone(t);
  if (out.metadata?.labels) delete out.metadata.labels['pod-template-hash'];
  if (out.metadata) delete out.metadata.creationTimestamp;
  return out;
}

export function buildStablePatch(stable: V1Deployment, actions: Action[], stableTemplate?: V1PodTemplateSpec): Operation[] {
  const mine = actions.filter(isStablePatchAction);
  if (mine.length === 0) return [];
  const ops: Operation[] = [{ op: 'test', path: '/metadata/resourceVersion', value: stable.metadata!.resourceVersion! }];
  const ann = stable.metadata?.annotations;
  if (!ann) ops.push({ op: 'add', path: '/metadata/annotations', value: {} });
  for (const a of mine) {
    switch (a.type) {
      case 'unpauseStable':
        ops.push({ op: 'add', path: '/spec/paused', value: false });
        break;
      case 'restoreStableTemplate':
        if (!stableTemplate) throw new Error(`restoring ${stable.metadata!.name}: the template of revision ${a.revision} was not provided`);
        ops.push({ op: 'add', path: '/spec/template', value: deploymentTemplateFromReplicaSet(stableTemplate) });
        break;
      case 'clearRelease':
        if (ann?.[ANN_REVISION] !== undefined) ops.push({ op: 'remove', path: annPath(ANN_REVISION) });
        if (ann?.[ANN_STABLE_REVISION] !== undefined) ops.push({ op: 'remove', path: annPath(ANN_STABLE_REVISION) });
        if (a.failedRevision) ops.push({ op: 'add', path: annPath(ANN_FAILED_REVISION), value: a.failedRevision });
        break;
      case 'clearRequest':
        // Only the value this decision was made on: the resourceVersion test above guarantees it.
        if (ann?.[ANN_REQUEST] !== undefined) ops.push({ op: 'remove', path: annPath(ANN_REQUEST) });
        break;
      case 'clearFailedRevision':
        if (ann?.[ANN_FAILED_REVISION] !== undefined) ops.push({ op: 'remove', path: annPath(ANN_FAILED_REVISION) });
        break;
      case 'writeStatus':
        ops.push({ op: 'add', path: annPath(ANN_STATUS), value: serializeStatus(a.status) });
        break;
      default:
        break;
    }
  }
  return ops;
}
