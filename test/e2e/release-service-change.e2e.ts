/**
 * kube-canary.io/service mid-release. The progressor routes only the Service the annotation
 * names now, so moving it once the canary has traffic would leave the old Service's routes
 * sending the canary's share, for good (to pods that are gone once the canary is deleted): the
 * webhook refuses it. Before the first weight it is allowed, since that is how a release held by
 * a missing Service (a typo in the annotation) is put right. Such a held release can also be
 * aborted: its rollback needs no routes.
 */
import assert from 'node:assert/strict';
import { getDeployment, kubectl, waitFor } from './harness/cluster.js';
import { useProgressorEnv } from './harness/progressor.js';
import { ANN_FAILED_REVISION, ReleaseRecorder, deploymentEvents, routeWeights, ship, statusOf, waitForPhase } from './harness/release.js';

const ANN_SERVICE = 'kube-canary.io/service';

describe('release: kube-canary.io/service changed mid-release', function () {
  this.timeout(180_000);
  const scenario = useProgressorEnv('release-service', { intervalS: 3 });
  before(() => {
    scenario.env.start('a');
  });
  const annotate = (value: string) => kubectl(['-n', scenario.ns, 'annotate', '--overwrite', 'deployment', 'review', `${ANN_SERVICE}=${value}`], { allowFailure: true });

  it('is refused once the canary has traffic, and the release ends with the routes of its Service all on stable', async () => {
    const ns = scenario.ns;
    await kubectl(['-n', ns, 'create', 'service', 'clusterip', 'review-b', '--tcp=80:8080']);
    const rec = new ReleaseRecorder(ns, 'review').start();
    try {
      await ship(ns, 'review', 'review:1.8.0');
      await waitFor('the canary to get traffic', async () => ((await routeWeights(ns, 'review'))?.canary ?? 0) > 0, { timeoutMs: 60_000, describe: () => rec.describe() });
      const moved = await annotate('review-b');
      assert.notEqual(moved.code, 0, `the move must be refused: ${moved.stdout}${moved.stderr}`);
      assert.match(moved.stderr, /has a canary release of revision \w+ in progress that sends \d+% of Service review's traffic to review-canary; changing the routed Service to review-b now would leave review's routes sending that share to the canary/);
      assert.equal((await getDeployment(ns, 'review')).metadata?.annotations?.[ANN_SERVICE], undefined);

      const final = await waitForPhase(ns, 'review', ['Succeeded', 'Failed'], 90_000, () => rec.describe());
      assert.equal(final.phase, 'Succeeded', rec.describe());
      const w = await routeWeights(ns, 'review');
      assert.deepEqual([w?.stable, w?.canary], [100, 0], 'no share left on the deleted canary');
      // Once it is over, the Service may change.
      assert.equal((await annotate('review-b')).code, 0);
      assert.equal((await annotate('review')).code, 0);
    } finally {
      await rec.stop();
    }
  });

  it('is allowed before the first weight: a release held by a missing Service goes on once the annotation names the right one', async () => {
    const ns = scenario.ns;
    assert.equal((await annotate('reviw')).code, 0, 'no release in progress');
    const rec = new ReleaseRecorder(ns, 'review').start();
    try {
      await ship(ns, 'review', 'review:1.9.0');
      const revision = (await getDeployment(ns, 'review')).metadata?.annotations?.['kube-canary.io/revision'];
      assert.ok(revision, 'captured');
      await waitFor('the ReconcileError naming the missing Service', async () => (await deploymentEvents(ns, 'review')).some((e) => e.reason === 'ReconcileError' && /Service reviw not found/.test(e.message ?? '')), { timeoutMs: 30_000 });
      // Held before anything was written for it: the status is still the last release's.
      assert.notEqual(statusOf(await getDeployment(ns, 'review'))?.revision, revision);
      const fixed = await annotate('review');
      assert.equal(fixed.code, 0, fixed.stderr);
      const final = await waitFor('the release of the new revision to end', async () => {
        const s = statusOf(await getDeployment(ns, 'review'));
        return s?.revision === revision && ['Succeeded', 'Failed'].includes(s.phase) ? s : undefined;
      }, { timeoutMs: 90_000, describe: () => rec.describe() });
      assert.equal(final.phase, 'Succeeded', rec.describe());
      assert.ok(rec.phases().includes('Progressing'), `analysed, not skipped:\n${rec.describe()}`);
      assert.equal((await getDeployment(ns, 'review')).spec?.template.spec?.containers[0]?.image, 'review:1.9.0');
    } finally {
      await rec.stop();
    }
  });
  it('a release held by a missing Service can be aborted: rolled back, failed revision recorded, the routes of the real Service untouched', async () => {
    const ns = scenario.ns;
    assert.equal((await annotate('reviw')).code, 0, 'no release in progress');
    const rec = new ReleaseRecorder(ns, 'review').start();
    try {
      await ship(ns, 'review', 'review:2.0.0');
      const revision = (await getDeployment(ns, 'review')).metadata?.annotations?.['kube-canary.io/revision'];
      assert.ok(revision, 'captured');
      await waitFor('the ReconcileError naming the missing Service', async () => (await deploymentEvents(ns, 'review')).filter((e) => e.reason === 'ReconcileError' && /Service reviw not found/.test(e.message ?? '')).length > 0, { timeoutMs: 30_000 });
      await kubectl(['-n', ns, 'annotate', '--overwrite', 'deployment', 'review', 'kube-canary.io/request=abort']);
      const final = await waitFor('the held release to be rolled back', async () => {
        const s = statusOf(await getDeployment(ns, 'review'));
        return s?.revision === revision && ['Succeeded', 'Failed'].includes(s.phase) ? s : undefined;
      }, { timeoutMs: 30_000, describe: () => rec.describe() });
      assert.equal(final.phase, 'Failed', rec.describe());
      assert.equal(final.message, `Rolling back review.${ns}: aborted by request`);
      const d = await getDeployment(ns, 'review');
      assert.notEqual(d.spec?.paused, true);
      assert.equal(d.spec?.template.spec?.containers[0]?.image, 'review:1.9.0', 'the stable template is restored');
      assert.equal(d.metadata?.annotations?.[ANN_FAILED_REVISION], revision);
      assert.equal(d.metadata?.annotations?.['kube-canary.io/request'], undefined);
      const w = await routeWeights(ns, 'review');
      assert.deepEqual([w?.stable, w?.canary], [100, 0]);
    } finally {
      await rec.stop();
    }
  });
});
