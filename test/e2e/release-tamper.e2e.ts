/**
 * Hands on the release's objects mid-release: route weights edited by hand (as a GitOps sync of
 * the VirtualService would) are set back, a deleted canary is recreated, each with a Warning
 * Event on the stable Deployment, and the release still ends promoted.
 */
import assert from 'node:assert/strict';
import { getDeployment, kubectl, podImages, podsOf, waitFor, waitForDeploymentReady } from './harness/cluster.js';
import { ReleaseRecorder, articleAnalysis, clients, deploymentEvents, routeWeights, ship, useReviewRelease, waitForPhase } from './harness/release.js';

describe('release: routes and canary tampered with mid-release', function () {
  this.timeout(300_000);
  // 10 s steps: room to tamper while the canary holds 25%.
  const release = useReviewRelease('release-tamper', { analysis: articleAnalysis(10) });

  const messages = async () => (await deploymentEvents(release.ns, 'review')).map((e) => `${e.type} ${e.reason}: ${e.message ?? ''}`);

  it('sets hand-edited weights back and recreates a deleted canary, says so in Events, and still promotes', async () => {
    const rec = new ReleaseRecorder(release.ns, 'review').start();
    try {
      await ship(release.ns, 'review', 'review:1.8.0');
      await waitFor('the canary to get 25%', async () => (await routeWeights(release.ns, 'review'))?.canary === 25, { timeoutMs: 90_000, describe: () => rec.describe() });

      // Weights edited by hand: all traffic back to stable.
      const w = (await routeWeights(release.ns, 'review'))!;
      const vs = JSON.parse((await kubectl(['get', 'virtualservice', w.vs, '-n', release.ns, '-o', 'json'])).stdout) as { spec: { http: Array<{ route: Array<{ destination: { subset?: string } }> }> } };
      const ops = vs.spec.http[0]!.route.map((r, i) => ({ op: 'replace', path: `/spec/http/0/route/${i}/weight`, value: r.destination.subset === 'canary' ? 0 : 100 }));
      await kubectl(['patch', 'virtualservice', w.vs, '-n', release.ns, '--type=json', '-p', JSON.stringify(ops)]);
      // Set back to 25%, or to 50% if the next step fell due in between.
      const restored = /^Warning RoutesRestored: The traffic routes of review\.\S+ sent 0% to the canary and 100% to stable instead of 25%; set to (25|50)%/;
      await waitFor('a RoutesRestored Warning', async () => (await messages()).some((m) => restored.test(m)), { timeoutMs: 30_000, describe: async () => (await messages()).join('\n') });
      const back = (await routeWeights(release.ns, 'review'))?.canary;
      assert.ok(back === 25 || back === 50, `the release weight is back, got ${back}`);

      // The canary deleted by hand.
      const before = (await getDeployment(release.ns, 'review-canary')).metadata!.uid;
      await clients().apps.deleteNamespacedDeployment({ name: 'review-canary', namespace: release.ns });
      await waitFor('a CanaryRecreated Warning', async () => (await messages()).some((m) => m.startsWith('Warning CanaryRecreated: review-canary.') && m.includes('was deleted during the release')), { timeoutMs: 30_000, describe: async () => (await messages()).join('\n') });
      await waitFor('a new review-canary', async () => {
        const d = await getDeployment(release.ns, 'review-canary').catch(() => undefined);
        return d !== undefined && d.metadata!.uid !== before;
      }, { timeoutMs: 30_000 });

      const final = await waitForPhase(release.ns, 'review', ['Succeeded', 'Failed'], 180_000, () => rec.describe());
      assert.equal(final.phase, 'Succeeded', rec.describe());
      await waitForDeploymentReady(release.ns, 'review', 2);
      assert.deepEqual(podImages(await podsOf(release.ns, 'review')), ['review:1.8.0', 'review:1.8.0']);
      assert.deepEqual(await routeWeights(release.ns, 'review').then((x) => x && [x.stable, x.canary]), [100, 0]);
      const all = await messages();
      assert.equal(all.filter((m) => m.includes('RoutesRestored')).length, 1, all.join('\n'));
      assert.equal(all.filter((m) => m.includes('CanaryRecreated')).length, 1, all.join('\n'));
    } finally {
      await rec.stop();
    }
  });
});
