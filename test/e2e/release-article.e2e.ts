/**
 * Issue #4, the canary article's scenario: `review` opted in, maxWeight 50, stepWeight 25,
 * threshold 5, the two built-in metrics (intervals scaled to seconds). `kubectl set image ...
 * review:1.8.0` ends with the stable Deployment on 1.8.0, no canary, weights 100/0, and the
 * Events in the article's order.
 */
import assert from 'node:assert/strict';
import { getDeployment, podImages, podsOf, waitForDeploymentReady } from './harness/cluster.js';
import {
  ANN_REVISION,
  ReleaseRecorder,
  deploymentEvents,
  inOrder,
  routeWeights,
  ship,
  waitForPhase,
  useReviewRelease,
} from './harness/release.js';

describe('release: the canary article\'s scenario (review 1.7.0 -> 1.8.0, promoted)', function () {
  this.timeout(240_000);
  const release = useReviewRelease('release-article');

  it('promotes 1.8.0 through weights 25 and 50, with Events in the article\'s order', async () => {
    const rec = new ReleaseRecorder(release.ns, 'review').start();
    try {
      const out = await ship(release.ns, 'review', 'review:1.8.0');
      assert.match(out.stderr, /review-canary/, `kubectl should print the webhook's warning naming the canary: ${out.stderr}`);
      const revision = (await getDeployment(release.ns, 'review')).metadata?.annotations?.[ANN_REVISION];
      assert.ok(revision, 'the webhook stamps kube-canary.io/revision');

      const final = await waitForPhase(release.ns, 'review', ['Succeeded', 'Failed'], 150_000, () => rec.describe());
      assert.equal(final.phase, 'Succeeded', `release should succeed:\n${rec.describe()}`);

      const d = await waitForDeploymentReady(release.ns, 'review', 2);
      assert.equal(d.spec?.template.spec?.containers[0]?.image, 'review:1.8.0');
      assert.notEqual(d.spec?.paused, true, 'the stable Deployment is unpaused after promotion');
      assert.equal(d.metadata?.annotations?.[ANN_REVISION], undefined, 'the in-progress annotations are cleared');
      assert.deepEqual(podImages(await podsOf(release.ns, 'review')), ['review:1.8.0', 'review:1.8.0']);
      await assert.rejects(getDeployment(release.ns, 'review-canary'), 'no canary Deployment is left');
      const w = await routeWeights(release.ns, 'review');
      assert.ok(w, 'a VirtualService routes review');
      assert.deepEqual([w.stable, w.canary], [100, 0]);

      // The weights the simulator saw went 100/0 -> 75/25 -> 50/50 -> 100/0.
      // (the final 100/0 read above is appended: the recorder's last poll may not have caught it yet)
      const seen = [...rec.timeline.map((e) => e.routes), `${w.stable}/${w.canary}`].filter((r, i, a) => r && a[i - 1] !== r);
      assert.ok(inOrder(seen as string[], [/^75\/25$/, /^50\/50$/, /^100\/0$/]).ok, `routes seen: ${seen.join(' -> ')}\n${rec.describe()}`);

      const events = (await deploymentEvents(release.ns, 'review')).map((e) => e.message ?? '');
      const id = `review\\.${release.ns}`;
      const order = inOrder(events, [
        new RegExp(`^New revision detected ${id}`),
        new RegExp(`^Advance ${id} canary weight 25$`),
        new RegExp(`^Advance ${id} canary weight 50$`),
        new RegExp(`^Promoting revision ${revision!.slice(0, 7)}\\w* into ${id}`),
        new RegExp(`^Promotion completed! Scaling down review-canary\\.${release.ns}$`),
      ]);
      assert.ok(order.ok, `events out of order or missing (${order.ok ? '' : order.missing}):\n${events.join('\n')}`);
      assert.equal(events.filter((m) => /^Promoting revision/.test(m)).length, 1, 'exactly one promotion');
    } finally {
      await rec.stop();
    }
  });
});
