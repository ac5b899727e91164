/**
 * A revision shipped while the previous one is being promoted (the stable Deployment already
 * rolling onto it) is released against the revision being promoted: when it fails, the stable
 * Deployment returns to that revision, not to the one before it.
 */
import assert from 'node:assert/strict';
import { getDeployment, kubectl, podImages, podsOf, waitFor, waitForDeploymentReady } from './harness/cluster.js';
import { ANN_FAILED_REVISION, ANN_REVISION, ReleaseRecorder, ship, waitForPhase, useReviewRelease } from './harness/release.js';

const ANN_STABLE_REVISION = 'kube-canary.io/stable-revision';

describe('release: a new revision shipped during a promotion', function () {
  this.timeout(420_000);
  const release = useReviewRelease('release-promo-newrev');

  it('is released against the revision being promoted, and a failure returns to that revision', async () => {
    const ns = release.ns;
    // Each new pod counts as available only after 15 s, so the promotion lasts long enough to ship into.
    await kubectl(['-n', ns, 'patch', 'deployment', 'review', '--type', 'merge', '-p', '{"spec":{"minReadySeconds":15}}']);
    const rec = new ReleaseRecorder(ns, 'review').start();
    try {
      await ship(ns, 'review', 'review:1.8.0');
      const promoted = (await getDeployment(ns, 'review')).metadata?.annotations?.[ANN_REVISION];
      assert.ok(promoted);
      await waitForPhase(ns, 'review', ['Promoting'], 180_000, () => rec.describe());
      await waitFor('the stable Deployment to start rolling onto the promoted revision', async () => {
        const d = await getDeployment(ns, 'review');
        return (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 1) && (d.status?.updatedReplicas ?? 0) > 0 ? d : undefined;
      }, { timeoutMs: 60_000, describe: () => rec.describe() });

      const out = await ship(ns, 'review', 'review:1.9.0', { errorRate: 0.3, latencyMs: 30 });
      assert.match(out.stderr, new RegExp(`the promotion of ${promoted} stops where it is`), out.stderr);
      const captured = await getDeployment(ns, 'review');
      assert.equal(captured.metadata?.annotations?.[ANN_STABLE_REVISION], promoted);
      assert.equal(captured.spec?.paused, true);
      const bad = captured.metadata!.annotations![ANN_REVISION]!;

      const final = await waitForPhase(ns, 'review', ['Succeeded', 'Failed'], 300_000, () => rec.describe());
      assert.equal(final.phase, 'Failed', rec.describe());
      assert.equal(final.revision, bad);
      const d = await waitForDeploymentReady(ns, 'review', 2);
      assert.equal(d.spec?.template.spec?.containers[0]?.image, 'review:1.8.0', 'the stable template is the promoted revision, not 1.7.0');
      assert.notEqual(d.spec?.paused, true);
      assert.ok(d.metadata?.annotations?.[ANN_FAILED_REVISION]?.includes(bad.slice(0, 7)));
      await waitFor('every stable pod on 1.8.0', async () => {
        const images = podImages((await podsOf(ns, 'review')).filter((p) => p.metadata?.labels?.['version'] !== 'canary'));
        return images.length === 2 && images.every((i) => i === 'review:1.8.0') ? images : undefined;
      }, { timeoutMs: 120_000, describe: () => rec.describe() });
    } finally {
      await rec.stop();
    }
  });
});
