/**
 * A Deployment deleted mid-release. Garbage collection takes its canary (and the routes
 * kube-canary generated), but the VirtualService here is the user's own (the canary article's):
 * nobody but the progressor can set it back, or the canary's share of the traffic would go on
 * flowing to pods that no longer exist, also after the Deployment is created again.
 */
import assert from 'node:assert/strict';
import { getDeployment, kubectl, waitFor } from './harness/cluster.js';
import { deployReview, useProgressorEnv } from './harness/progressor.js';
import { ReleaseRecorder, deploymentEvents, routeWeights, ship, statusOf } from './harness/release.js';

describe('progressor: the Deployment deleted mid-release', function () {
  this.timeout(180_000);
  const scenario = useProgressorEnv('progressor-deleted', { intervalS: 3 });

  it("sets the user's VirtualService back to all stable", async () => {
    const proc = scenario.env.start('only');
    const rec = new ReleaseRecorder(scenario.ns, 'review').start(150);
    try {
      await ship(scenario.ns, 'review', 'review:1.8.0');
      await waitFor('canary weight 10', async () => (statusOf(await getDeployment(scenario.ns, 'review'))?.weight ?? 0) >= 10, { timeoutMs: 60_000, describe: () => `${rec.describe()}\n${proc.output().slice(-3000)}` });
      assert.ok(((await routeWeights(scenario.ns, 'review'))?.canary ?? 0) > 0);

      await kubectl(['-n', scenario.ns, 'delete', 'deployment', 'review', '--wait=false']);
      const w = await waitFor('the routes back on stable', async () => {
        const r = await routeWeights(scenario.ns, 'review');
        return r?.canary === 0 ? r : undefined;
      }, { timeoutMs: 30_000, describe: () => `${rec.describe()}\n${proc.output().slice(-3000)}` });
      assert.deepEqual(w, { stable: 100, canary: 0, vs: 'review-virtualservice' }, 'the user-owned VirtualService, still there');
      // Logged once the PATCH is answered, which may be after another client already sees it.
      await waitFor('the log line', async () => /deleted mid-release: its traffic routed back to stable/.test(proc.output()), { timeoutMs: 10_000 });
    } finally {
      await rec.stop();
      await proc.stop();
    }
  });

  it('also when it is created again at once (kubectl replace --force, delete + apply): the new Deployment runs no release, its routes are all stable', async () => {
    const proc = scenario.env.start('again');
    try {
      await deployReview(scenario.ns, { intervalS: 3 });
      await ship(scenario.ns, 'review', 'review:1.8.0');
      await waitFor('canary weight 10', async () => (statusOf(await getDeployment(scenario.ns, 'review'))?.weight ?? 0) >= 10, { timeoutMs: 60_000, describe: () => proc.output().slice(-3000) });
      await kubectl(['-n', scenario.ns, 'delete', 'deployment', 'review', '--wait=true']);
      // Only the Deployment (applying the VirtualService again would reset its weights itself).
      await deployReview(scenario.ns, { intervalS: 3, userRouting: false });
      const w = await waitFor('the routes back on stable', async () => {
        const r = await routeWeights(scenario.ns, 'review');
        return r?.canary === 0 ? r : undefined;
      }, { timeoutMs: 30_000, describe: () => proc.output().slice(-3000) });
      assert.deepEqual(w, { stable: 100, canary: 0, vs: 'review-virtualservice' });
      const d = await getDeployment(scenario.ns, 'review');
      assert.equal(statusOf(d), undefined, 'the new Deployment has no release');
    } finally {
      await proc.stop();
    }
  });

  it('also when that happened while no progressor ran: the next one sets the routes back, with a Warning on the new Deployment', async () => {
    const first = scenario.env.start('before');
    await ship(scenario.ns, 'review', 'review:1.9.0');
    await waitFor('canary weight 10', async () => (statusOf(await getDeployment(scenario.ns, 'review'))?.weight ?? 0) >= 10, { timeoutMs: 60_000, describe: () => first.output().slice(-3000) });
    await first.stop();
    await kubectl(['-n', scenario.ns, 'delete', 'deployment', 'review', '--wait=true']);
    await deployReview(scenario.ns, { intervalS: 3, userRouting: false });
    const inherited = await routeWeights(scenario.ns, 'review');
    assert.ok((inherited?.canary ?? 0) > 0, `nobody set the routes back while no progressor ran: ${JSON.stringify(inherited)}`);

    const next = scenario.env.start('after');
    try {
      const w = await waitFor('the routes back on stable', async () => {
        const r = await routeWeights(scenario.ns, 'review');
        return r?.canary === 0 ? r : undefined;
      }, { timeoutMs: 30_000, describe: () => next.output().slice(-3000) });
      assert.deepEqual(w, { stable: 100, canary: 0, vs: 'review-virtualservice' });
      const event = await waitFor('the RoutesRestored Event', async () => (await deploymentEvents(scenario.ns, 'review')).find((e) => e.reason === 'RoutesRestored'), { timeoutMs: 15_000 });
      assert.equal(event.type, 'Warning');
      assert.match(event.message ?? '', new RegExp(`sent ${inherited!.canary}% to the canary with no release in progress`));
      assert.equal(statusOf(await getDeployment(scenario.ns, 'review')), undefined, 'the new Deployment has no release');
    } finally {
      await next.stop();
    }
  });
});
