/**
 * A canary whose pods a ResourceQuota refuses: the release says why it waits (the Deployment's
 * ReplicaFailure condition), not only "0 of 1 new replicas", and goes on once the quota allows it.
 */
import assert from 'node:assert/strict';
import { clients, waitFor } from './harness/cluster.js';
import { ReleaseRecorder, articleAnalysis, routeWeights, ship, statusOf, useReviewRelease } from './harness/release.js';

describe('release: canary pods refused by a ResourceQuota', function () {
  this.timeout(240_000);
  const release = useReviewRelease('release-quota', { analysis: articleAnalysis(5, 3) });

  it('names the refusal while it lasts, then proceeds once the quota is lifted', async () => {
    const rec = new ReleaseRecorder(release.ns, 'review').start();
    const core = clients().core;
    try {
      // The two stable pods use the whole quota; it binds once the quota controller has counted them.
      await core.createNamespacedResourceQuota({ namespace: release.ns, body: { metadata: { name: 'pods' }, spec: { hard: { pods: '2' } } } });
      await waitFor('the quota to be counted', async () => (await core.readNamespacedResourceQuota({ name: 'pods', namespace: release.ns })).status?.used?.pods === '2');

      await ship(release.ns, 'review', 'review:1.8.0');
      const held = await waitFor(
        'the status to name the refused pods',
        async () => {
          const s = statusOf(await clients().apps.readNamespacedDeployment({ name: 'review', namespace: release.ns }));
          return s?.message.includes('its pods cannot be created (condition ReplicaFailure, FailedCreate') ? s : undefined;
        },
        { timeoutMs: 60_000, describe: () => rec.describe() },
      );
      assert.match(held.message, /^Waiting for review-canary\.\S+ rollout to finish: 0 of 1 new replicas have been updated; its pods cannot be created \(condition ReplicaFailure, FailedCreate: kubectl describe deployment shows why, e\.g\. a ResourceQuota\)$/);
      assert.equal((await routeWeights(release.ns, 'review'))?.canary ?? 0, 0, 'no traffic to a canary without pods');

      await core.deleteNamespacedResourceQuota({ name: 'pods', namespace: release.ns });
      await waitFor('the canary to get 25%', async () => (await routeWeights(release.ns, 'review'))?.canary === 25, { timeoutMs: 120_000, describe: () => rec.describe() });
    } finally {
      await rec.stop();
    }
  });
});
