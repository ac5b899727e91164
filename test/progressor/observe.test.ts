import assert from 'node:assert/strict';
import type { V1Deployment } from '@kubernetes/client-node';
import { canaryView } from '../../src/progressor/observe.js';

function deployment(conditions: NonNullable<V1Deployment['status']>['conditions']): V1Deployment {
  return {
    metadata: { name: 'review-canary', namespace: 'test', generation: 2 },
    spec: { replicas: 2, selector: { matchLabels: { app: 'review' } }, template: { metadata: { labels: { app: 'review' } }, spec: { containers: [{ name: 'review', image: 'review:1.8.0' }] } } },
    status: { observedGeneration: 2, replicas: 0, updatedReplicas: 0, availableReplicas: 0, conditions },
  };
}

describe('progressor observation of a Deployment', () => {
  it('reads a true ReplicaFailure condition (pods refused, e.g. by a ResourceQuota) as its reason, and nothing else as a failure', () => {
    const quota = { type: 'ReplicaFailure', status: 'True', reason: 'FailedCreate', message: 'pods "review-canary-6d4cf56db6-x2lpq" is forbidden: exceeded quota: q' };
    assert.equal(canaryView(deployment([quota]), 'version').replicaFailure, 'FailedCreate');
    assert.equal(canaryView(deployment([{ ...quota, reason: undefined }]), 'version').replicaFailure, 'ReplicaFailure');
    assert.equal(canaryView(deployment([{ ...quota, status: 'False' }]), 'version').replicaFailure, undefined);
    assert.equal(canaryView(deployment([{ type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable' }]), 'version').replicaFailure, undefined);
    assert.equal(canaryView(deployment(undefined), 'version').replicaFailure, undefined);
  });
});
