/**
 * Issue #4: the progressor killed (SIGKILL) in the middle of a release and started again: the
 * release continues from the state in the API and finishes correctly: one promotion, the
 * stable Deployment on the new image, routes 100/0, no canary left.
 */
import assert from 'node:assert/strict';
import { getDeployment, kubectl, waitFor, waitForDeploymentReady } from './harness/cluster.js';
import { kill9, useProgressorEnv } from './harness/progressor.js';
import { ANN_REVISION, ReleaseRecorder, deploymentEvents, routeWeights, ship, statusOf, waitForPhase } from './harness/release.js';

describe('progressor: SIGKILL mid-release and restart', function () {
  this.timeout(180_000);
  const scenario = useProgressorEnv('progressor-restart', { intervalS: 2 });

  it('finishes the release after a restart: promoted once, 100/0, no canary', async () => {
    const first = scenario.env.start('first');
    const rec = new ReleaseRecorder(scenario.ns, 'review').start(150);
    try {
      await ship(scenario.ns, 'review', 'review:1.8.0');
      // Kill it half-way through the steps (10% .. 50%).
      await waitFor('canary weight 20', async () => (statusOf(await getDeployment(scenario.ns, 'review'))?.weight ?? 0) >= 20, { timeoutMs: 60_000, describe: () => `${rec.describe()}\n${first.output().slice(-3000)}` });
      await kill9(first);
      const killedAt = Date.now();
      const atKill = await routeWeights(scenario.ns, 'review');
      assert.ok(atKill && atKill.canary >= 10 && atKill.canary < 50, `weights at the kill: ${JSON.stringify(atKill)}`);

      const second = scenario.env.start('second');
      const done = await waitForPhase(scenario.ns, 'review', ['Succeeded', 'Failed'], 90_000, () => `${rec.describe()}\n--- second:\n${second.output().slice(-4000)}`);
      assert.equal(done.phase, 'Succeeded', rec.describe());

      const d = await getDeployment(scenario.ns, 'review');
      assert.equal(d.spec?.template.spec?.containers[0]?.image, 'review:1.8.0');
      assert.notEqual(d.spec?.paused, true);
      assert.equal(d.metadata?.annotations?.[ANN_REVISION], undefined);
      assert.deepEqual(await routeWeights(scenario.ns, 'review'), { stable: 100, canary: 0, vs: 'review-virtualservice' });
      const canary = await kubectl(['-n', scenario.ns, 'get', 'deployment', 'review-canary'], { allowFailure: true });
      assert.notEqual(canary.code, 0, 'the canary Deployment is gone');
      await waitForDeploymentReady(scenario.ns, 'review', 2);

      // The weight never went backwards across the restart, and the release was promoted once.
      const weights = rec.timeline.filter((e) => e.t <= killedAt + 60_000 && e.phase === 'Progressing').map((e) => e.weight ?? 0);
      assert.deepEqual(weights, [...weights].sort((a, b) => a - b), rec.describe());
      const messages = (await deploymentEvents(scenario.ns, 'review')).map((e) => e.message ?? '');
      assert.equal(messages.filter((m) => m.startsWith('Promoting revision')).length, 1, messages.join('\n'));
      assert.equal(messages.filter((m) => m.startsWith('Promotion completed!')).length, 1, messages.join('\n'));
      assert.ok(second.output().includes('became leader'));
    } finally {
      await rec.stop();
    }
  });
});
