/**
 * A user who puts back the running image mid-release (`kubectl set image` to the old one)
 * cancels the release: all traffic to stable, the canary deleted, the Deployment unpaused on its
 * running ReplicaSet (same pods), and no failed revision recorded.
 */
import assert from 'node:assert/strict';
import { getDeployment, kubectl, podsOf, waitFor, waitForDeploymentReady } from './harness/cluster.js';
import { useProgressorEnv } from './harness/progressor.js';
import { ANN_FAILED_REVISION, ANN_REVISION, ReleaseRecorder, deploymentEvents, routeWeights, ship, statusOf } from './harness/release.js';

describe('progressor: revert to the running image mid-release', function () {
  this.timeout(180_000);
  const scenario = useProgressorEnv('progressor-revert', { intervalS: 3 });

  it('cancels the release without churn and without a failed revision', async () => {
    const proc = scenario.env.start('only');
    const rec = new ReleaseRecorder(scenario.ns, 'review').start(150);
    try {
      const podsBefore = (await podsOf(scenario.ns, 'review')).map((p) => p.metadata?.name).sort();
      await ship(scenario.ns, 'review', 'review:1.8.0');
      await waitFor('canary weight 10', async () => (statusOf(await getDeployment(scenario.ns, 'review'))?.weight ?? 0) >= 10, { timeoutMs: 60_000, describe: () => `${rec.describe()}\n${proc.output().slice(-3000)}` });
      const revert = await ship(scenario.ns, 'review', 'review:1.7.0');
      assert.match(revert.stderr, /back on the running revision/, 'the webhook says the release is cancelled');
      const s = await waitFor('the release to be cancelled', async () => {
        const d = await getDeployment(scenario.ns, 'review');
        const st = statusOf(d);
        return st?.cancelled === true && !d.metadata?.annotations?.[ANN_REVISION] ? st : undefined;
      }, { timeoutMs: 60_000, describe: () => `${rec.describe()}\n${proc.output().slice(-3000)}` });
      assert.equal(s.phase, 'Succeeded');
      const d = await getDeployment(scenario.ns, 'review');
      assert.notEqual(d.spec?.paused, true);
      assert.equal(d.metadata?.annotations?.[ANN_FAILED_REVISION], undefined);
      assert.equal(d.spec?.template.spec?.containers[0]?.image, 'review:1.7.0');
      assert.deepEqual(await routeWeights(scenario.ns, 'review'), { stable: 100, canary: 0, vs: 'review-virtualservice' });
      await waitFor('the canary to be gone', async () => (await kubectl(['-n', scenario.ns, 'get', 'deployment', 'review-canary'], { allowFailure: true })).code !== 0, { timeoutMs: 30_000 });
      await waitForDeploymentReady(scenario.ns, 'review', 2);
      assert.deepEqual((await podsOf(scenario.ns, 'review')).map((p) => p.metadata?.name).sort(), podsBefore, 'the running pods were never replaced');
      const messages = (await deploymentEvents(scenario.ns, 'review')).map((e) => e.message ?? '');
      assert.ok(messages.some((m) => /cancelled: review\.\S+ is back on its running revision/.test(m)), messages.join('\n'));
      assert.ok(!messages.some((m) => m.startsWith('Promoting revision')), 'nothing was promoted');
    } finally {
      await rec.stop();
    }
  });
});
