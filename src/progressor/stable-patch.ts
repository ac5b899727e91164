/**
 * The one write to the stable Deployment per reconcile: a JSON patch that starts with a `test`
 * of the observed uid and generation (optimistic concurrency: a stale writer, e.g. a progressor
 * that lost its lease, gets 422 and changes nothing) and then applies unpause, template
 * restore, annotation cleanup (incl. the one-shot kube-canary.io/request) and the status
 * together, so a transition is atomic and a request is acted on exactly once.
 *
 * Why generation and not resourceVersion: the API server bumps a Deployment's generation on
 * every change of its spec or its annotations (annotations are copied to the ReplicaSets), which
 * is everything a decision reads, but not on status updates. Each of our commits changes an
 * annotation, so the Deployment controller answers it with a status update (observedGeneration);
 * with a resourceVersion test, that update made the next commit a conflict whenever the
 * controller lagged behind the watch: 1,066 conflicts in one 500-release benchmark run, each a
 * step redone from its gates. Labels do not bump the generation, and no decision reads one
 * the webhook would let change mid-release (opting out of a release in progress is denied).
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
  const ops: Operation[] = [
    { op: 'test', path: '/metadata/uid', value: stable.metadata!.uid! },
    { op: 'test', path: '/metadata/generation', value: stable.metadata!.generation! },
  ];
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
        // Only the value this decision was made on: the generation test above guarantees it.
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
