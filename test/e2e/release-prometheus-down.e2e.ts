/**
 * Issue #4: Prometheus stopped mid-release: no promotion (no data is a failed check, never a
 * pass); rollback after `threshold` failed checks.
 */
import assert from 'node:assert/strict';
import { createNamespace, deleteNamespace, getDeployment, waitFor, waitForDeploymentReady } from './harness/cluster.js';
import { ReleaseRecorder, applyObjects, articleAnalysis, reviewManifests, routeWeights, ship, startReleaseEnv, waitForPhase, type ReleaseEnv, progressorAvailable } from './harness/release.js';

const INTERVAL_S = 5;
const THRESHOLD = 3;
const SLACK_MS = 3000;

describe('release: Prometheus stopped mid-release', function () {
  this.timeout(240_000);
  let ns = '';
  let env: ReleaseEnv | undefined;

  before(async function () {
    if (!(await progressorAvailable())) this.skip();
    ns = await createNamespace('release-promdown');
    env = await startReleaseEnv(ns);
    const { service, deployment } = reviewManifests({ namespace: ns, image: 'review:1.7.0', analysis: articleAnalysis(INTERVAL_S, THRESHOLD) });
    await applyObjects(service, deployment);
    await waitForDeploymentReady(ns, 'review', 2);
  });

  after(async () => {
    await env?.stop();
    if (ns) await deleteNamespace(ns);
  });

  it('does not promote a healthy canary without data, and rolls back after threshold failed checks', async () => {
    const rec = new ReleaseRecorder(ns, 'review').start();
    try {
      await ship(ns, 'review', 'review:1.8.0');
      await waitFor('the canary to get 25%', async () => (await routeWeights(ns, 'review'))?.canary === 25, { timeoutMs: 90_000, describe: () => rec.describe() });
      await env!.stopPrometheus();
      const stoppedAt = Date.now();

      const final = await waitForPhase(ns, 'review', ['Succeeded', 'Failed'], 120_000, () => rec.describe());
      assert.equal(final.phase, 'Failed', `no data must never promote:\n${rec.describe()}`);
      assert.ok(!rec.phases().includes('Promoting'), rec.describe());
      const back = await waitFor('the recorder to see 100/0 again', () => rec.firstRoutes((s, c) => s === 100 && c === 0, stoppedAt), { timeoutMs: 10_000, describe: () => rec.describe() });
      const budget = THRESHOLD * INTERVAL_S * 1000 + INTERVAL_S * 1000 + SLACK_MS;
      assert.ok(back - stoppedAt <= budget, `rollback ${back - stoppedAt} ms after Prometheus stopped; budget ${budget} ms\n${rec.describe()}`);
      assert.match(final.message, /Prometheus|unreachable|threshold/i, final.message);
      const d = await waitForDeploymentReady(ns, 'review', 2);
      assert.equal(d.spec?.template.spec?.containers[0]?.image, 'review:1.7.0');
      await assert.rejects(getDeployment(ns, 'review-canary'));
    } finally {
      await rec.stop();
    }
  });
});
