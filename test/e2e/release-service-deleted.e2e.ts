/**
 * The Service deleted mid-release. Routes for a host with no Service shift nothing, and the
 * canary, which gets no traffic then, fails its checks for no data: that is no verdict on the
 * canary. So the release is held (a ReconcileError Event naming the Service): no step, no failed
 * check, no rollback, no failed revision recorded. Created again, the release goes on and promotes.
 */
import assert from 'node:assert/strict';
import { getDeployment, kubectl, waitFor } from './harness/cluster.js';
import { ANN_FAILED_REVISION, applyObjects, ReleaseRecorder, deploymentEvents, reviewManifests, routeWeights, ship, statusOf, useReviewRelease, waitForPhase } from './harness/release.js';

const INTERVAL_S = 5;
const ANALYSIS = JSON.stringify({
  interval: `${INTERVAL_S}s`,
  threshold: 3,
  maxWeight: 50,
  stepWeight: 10,
  metrics: [{ name: 'request-success-rate', thresholdRange: { min: 99 }, interval: '10s' }],
});
/** Long enough for the threshold's three failed checks, and a step or two, had the release gone on. */
const HOLD_MS = 6 * INTERVAL_S * 1000;

describe('release: its Service deleted mid-release', function () {
  this.timeout(300_000);
  const release = useReviewRelease('release-svc-deleted', { image: 'review:1.7.0', analysis: ANALYSIS });

  it('is held with a ReconcileError naming the Service (no step, no failed check, no failed revision); created again, it goes on and promotes', async () => {
    const ns = release.ns;
    const rec = new ReleaseRecorder(ns, 'review').start();
    try {
      await ship(ns, 'review', 'review:1.8.0');
      await waitFor('the canary to get 20%', async () => ((await routeWeights(ns, 'review'))?.canary ?? 0) >= 20, { timeoutMs: 90_000, describe: () => rec.describe() });
      await kubectl(['-n', ns, 'delete', 'service', 'review']);
      const blocked = await waitFor('the ReconcileError naming the missing Service', async () => (await deploymentEvents(ns, 'review')).find((e) => e.reason === 'ReconcileError' && new RegExp(`Service review not found in ${ns}: .*holds at canary weight \\d+`).test(e.message ?? '')), { timeoutMs: 30_000, describe: () => rec.describe() });
      assert.equal(blocked.type, 'Warning');
      // A step already under way as the Service went may have landed: the hold starts from there.
      const heldAt = statusOf(await getDeployment(ns, 'review'))!;
      const weights = await routeWeights(ns, 'review');
      assert.equal(weights?.canary, heldAt.weight);
      await new Promise((r) => setTimeout(r, HOLD_MS));
      const d = await getDeployment(ns, 'review');
      const s = statusOf(d)!;
      assert.deepEqual([s.phase, s.weight, s.failedChecks], ['Progressing', heldAt.weight, heldAt.failedChecks], `held: no step, no failed check\n${rec.describe()}`);
      assert.equal((await routeWeights(ns, 'review'))?.canary, heldAt.weight, 'the weights are not advanced');
      assert.equal(d.metadata?.annotations?.[ANN_FAILED_REVISION], undefined);
      const held = (await deploymentEvents(ns, 'review')).map((e) => `${e.reason}: ${e.message}`);
      const since = held.findIndex((m) => m.startsWith('ReconcileError: '));
      assert.deepEqual(held.slice(since + 1).filter((m) => /^(Advance|Halt|RollingBack|RolledBack):/.test(m)), [], held.join('\n'));

      const recreated = Date.now();
      await applyObjects(reviewManifests({ namespace: ns, image: 'review:1.8.0' }).service);
      const final = await waitForPhase(ns, 'review', ['Succeeded', 'Failed'], 180_000, () => rec.describe());
      assert.equal(final.phase, 'Succeeded', rec.describe());
      assert.equal(final.failedChecks, 0, `no check judged the time without the Service\n${rec.describe()}`);
      const after = await getDeployment(ns, 'review');
      assert.equal(after.spec?.template.spec?.containers[0]?.image, 'review:1.8.0');
      assert.equal(after.metadata?.annotations?.[ANN_FAILED_REVISION], undefined);
      const w = await routeWeights(ns, 'review');
      assert.deepEqual([w?.stable, w?.canary], [100, 0]);
      assert.ok(rec.timeline.some((e) => e.t > recreated && (e.weight ?? 0) > heldAt.weight), `went on stepping after the Service came back:\n${rec.describe()}`);
    } finally {
      await rec.stop();
    }
  });
});
