/**
 * Issue #4: a bad release (30% 5xx) is rolled back: weights back to 100/0 within
 * threshold x interval plus one interval, stable pods untouched (same pod names), failed
 * revision recorded, and re-applying the same release is refused by the webhook with the retry hint.
 */
import assert from 'node:assert/strict';
import { getDeployment, podsOf, waitFor, waitForDeploymentReady } from './harness/cluster.js';
import {
  ANN_FAILED_REVISION,
  ANN_REVISION,
  ReleaseRecorder,
  deploymentEvents,
  routeWeights,
  ship,
  waitForPhase,
  useReviewRelease,
} from './harness/release.js';

const INTERVAL_S = 5;
const THRESHOLD = 5;
/** Polling of the recorder and the progressor's watch delay. */
const SLACK_MS = 3000;

describe('release: a bad release (30% 5xx) is rolled back', function () {
  this.timeout(240_000);
  const release = useReviewRelease('release-rollback', { image: 'review:1.8.0' });

  it('rolls back within threshold x interval + one interval, keeps the stable pods, records the failed revision', async () => {
    const before = (await podsOf(release.ns, 'review')).filter((p) => p.metadata?.labels?.['version'] !== 'canary').map((p) => p.metadata!.name!).sort();
    const rec = new ReleaseRecorder(release.ns, 'review').start();
    try {
      await ship(release.ns, 'review', 'review:1.9.0', { errorRate: 0.3, latencyMs: 30 });
      const revision = (await getDeployment(release.ns, 'review')).metadata?.annotations?.[ANN_REVISION];
      assert.ok(revision);
      const final = await waitForPhase(release.ns, 'review', ['Succeeded', 'Failed'], 180_000, () => rec.describe());
      assert.equal(final.phase, 'Failed', `the bad release must fail:\n${rec.describe()}`);
      await new Promise((r) => setTimeout(r, 500));

      const firstTraffic = rec.firstRoutes((_, canary) => canary > 0);
      assert.ok(firstTraffic, `the canary never got traffic:\n${rec.describe()}`);
      const back = await waitFor('the recorder to see 100/0 again', () => rec.firstRoutes((stable, canary) => stable === 100 && canary === 0, firstTraffic), { timeoutMs: 10_000, describe: () => rec.describe() });
      const budget = THRESHOLD * INTERVAL_S * 1000 + INTERVAL_S * 1000 + SLACK_MS;
      assert.ok(back - firstTraffic <= budget, `rollback took ${back - firstTraffic} ms after the canary got traffic; budget ${budget} ms\n${rec.describe()}`);
      assert.ok(!rec.phases().includes('Promoting'), `never promoting:\n${rec.describe()}`);

      const d = await waitForDeploymentReady(release.ns, 'review', 2);
      assert.equal(d.spec?.template.spec?.containers[0]?.image, 'review:1.8.0', 'the stable template is restored');
      assert.notEqual(d.spec?.paused, true);
      const failed = d.metadata?.annotations?.[ANN_FAILED_REVISION];
      assert.ok(failed && failed.includes(revision!.slice(0, 7)), `failed revision recorded: ${failed}`);
      const after = (await podsOf(release.ns, 'review')).map((p) => p.metadata!.name!).sort();
      assert.deepEqual(after, before, 'the stable pods are the same pods (no churn)');
      await assert.rejects(getDeployment(release.ns, 'review-canary'));
      const w = await routeWeights(release.ns, 'review');
      assert.deepEqual([w?.stable, w?.canary], [100, 0]);

      const events = (await deploymentEvents(release.ns, 'review')).map((e) => e.message ?? '');
      assert.ok(events.some((m) => /^Rolling back review\./.test(m) || /^Canary failed!/.test(m)), events.join('\n'));
    } finally {
      await rec.stop();
    }
  });

  it('refuses to re-apply the failed release, with the retry hint', async () => {
    const out = await ship(release.ns, 'review', 'review:1.9.0', { errorRate: 0.3, latencyMs: 30 }, true);
    assert.notEqual(out.code, 0, `the webhook must deny: ${out.stdout}${out.stderr}`);
    assert.match(out.stderr, /kubectl canary retry review/);
    const d = await getDeployment(release.ns, 'review');
    assert.equal(d.spec?.template.spec?.containers[0]?.image, 'review:1.8.0');
  });
});
