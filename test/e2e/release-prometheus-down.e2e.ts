/**
 * Issue #4: Prometheus stopped mid-release: no promotion (no data is a failed check, never a
 * pass); rollback after `threshold` failed checks.
 */
import assert from 'node:assert/strict';
import { getDeployment, waitFor, waitForDeploymentReady } from './harness/cluster.js';
import { ReleaseRecorder, articleAnalysis, routeWeights, ship, waitForPhase, useReviewRelease } from './harness/release.js';

const INTERVAL_S = 5;
const THRESHOLD = 3;
const SLACK_MS = 3000;

describe('release: Prometheus stopped mid-release', function () {
  this.timeout(240_000);
  const release = useReviewRelease('release-promdown', { analysis: articleAnalysis(INTERVAL_S, THRESHOLD), behaviour: {} });

  it('does not promote a healthy canary without data, and rolls back after threshold failed checks', async () => {
    const rec = new ReleaseRecorder(release.ns, 'review').start();
    try {
      await ship(release.ns, 'review', 'review:1.8.0');
      await waitFor('the canary to get 25%', async () => (await routeWeights(release.ns, 'review'))?.canary === 25, { timeoutMs: 90_000, describe: () => rec.describe() });
      await release.env.stopPrometheus();
      const stoppedAt = Date.now();

      const final = await waitForPhase(release.ns, 'review', ['Succeeded', 'Failed'], 120_000, () => rec.describe());
      assert.equal(final.phase, 'Failed', `no data must never promote:\n${rec.describe()}`);
      assert.ok(!rec.phases().includes('Promoting'), rec.describe());
      const back = await waitFor('the recorder to see 100/0 again', () => rec.firstRoutes((s, c) => s === 100 && c === 0, stoppedAt), { timeoutMs: 10_000, describe: () => rec.describe() });
      const budget = THRESHOLD * INTERVAL_S * 1000 + INTERVAL_S * 1000 + SLACK_MS;
      assert.ok(back - stoppedAt <= budget, `rollback ${back - stoppedAt} ms after Prometheus stopped; budget ${budget} ms\n${rec.describe()}`);
      assert.match(final.message, /Prometheus|unreachable|threshold/i, final.message);
      const d = await waitForDeploymentReady(release.ns, 'review', 2);
      assert.equal(d.spec?.template.spec?.containers[0]?.image, 'review:1.7.0');
      await assert.rejects(getDeployment(release.ns, 'review-canary'));
    } finally {
      await rec.stop();
    }
  });
});
