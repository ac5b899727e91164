/**
 * Issue #4: a second `kubectl set image` mid-release restarts the analysis on the newest image,
 * and only that one is promoted.
 */
import assert from 'node:assert/strict';
import { clients, getDeployment, podImages, podsOf, waitFor, waitForDeploymentReady } from './harness/cluster.js';
import {
  ANN_REVISION,
  ReleaseRecorder,
  deploymentEvents,
  routeWeights,
  ship,
  waitForPhase,
  useReviewRelease,
} from './harness/release.js';

describe('release: a second set image mid-release', function () {
  this.timeout(300_000);
  const release = useReviewRelease('release-newrev', { behaviour: {} });

  it('restarts the analysis on the newest image and promotes only that one', async () => {
    const rec = new ReleaseRecorder(release.ns, 'review').start();
    try {
      await ship(release.ns, 'review', 'review:1.8.0');
      const first = (await getDeployment(release.ns, 'review')).metadata?.annotations?.[ANN_REVISION];
      await waitFor('the canary to get 25%', async () => (await routeWeights(release.ns, 'review'))?.canary === 25, { timeoutMs: 90_000, describe: () => rec.describe() });

      await ship(release.ns, 'review', 'review:1.8.1');
      const second = (await getDeployment(release.ns, 'review')).metadata?.annotations?.[ANN_REVISION];
      assert.ok(first && second && first !== second, `revision changes: ${first} -> ${second}`);

      const final = await waitForPhase(release.ns, 'review', ['Succeeded', 'Failed'], 180_000, () => rec.describe());
      assert.equal(final.phase, 'Succeeded', rec.describe());
      assert.equal(final.revision, second);
      await waitForDeploymentReady(release.ns, 'review', 2);
      assert.deepEqual(podImages(await podsOf(release.ns, 'review')), ['review:1.8.1', 'review:1.8.1']);

      const events = (await deploymentEvents(release.ns, 'review')).map((e) => e.message ?? '');
      assert.ok(events.some((m) => /New revision detected .*analysis restarts/.test(m)), `restart event:\n${events.join('\n')}`);
      const promoting = events.filter((m) => /^Promoting revision/.test(m));
      assert.equal(promoting.length, 1, promoting.join('\n'));
      assert.ok(promoting[0]!.includes(second!.slice(0, 7)), promoting[0]);
      // 1.8.0 never reached the stable Deployment: none of its ReplicaSets ever ran it.
      const rs = await clients().apps.listNamespacedReplicaSet({ namespace: release.ns });
      const stableRs = rs.items.filter((r) => r.metadata?.ownerReferences?.some((o) => o.kind === 'Deployment' && o.name === 'review'));
      assert.ok(stableRs.every((r) => r.spec?.template?.spec?.containers[0]?.image !== 'review:1.8.0'), stableRs.map((r) => r.spec?.template?.spec?.containers[0]?.image).join(', '));
      // After the restart the weights started again from 25.
      const seen = rec.timeline.map((e) => e.routes).filter((r, i, a) => r && a[i - 1] !== r);
      assert.ok(seen.length > 0, rec.describe());
    } finally {
      await rec.stop();
    }
  });
});
