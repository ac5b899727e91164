/**
 * A Namespace's opt-in label removed in the middle of a release. Nobody can deny that (the
 * webhook sees Deployments, not Namespaces), so the progressor must end the release itself:
 * traffic back to stable, the canary deleted, the Deployment unpaused into the template the
 * user wrote (plain Kubernetes from now on), and a Warning Event saying why. Never left paused.
 */
import assert from 'node:assert/strict';
import { getDeployment, kubectl, waitFor, waitForDeploymentReady } from './harness/cluster.js';
import { ANN_REVISION, articleAnalysis, deploymentEvents, routeWeights, ship, statusOf, useReviewRelease } from './harness/release.js';

describe('release: the Namespace opts out mid-release', function () {
  this.timeout(180_000);
  const release = useReviewRelease('release-opt-out', { analysis: articleAnalysis(3), optIn: 'namespace' });

  it('ends the release: 100/0, no canary, unpaused into the new template, release annotations cleared, a Warning Event', async () => {
    await ship(release.ns, 'review', 'review:1.8.0', { errorRate: 0, latencyMs: 30 });
    assert.ok((await getDeployment(release.ns, 'review')).metadata?.annotations?.[ANN_REVISION], 'captured through the Namespace opt-in');
    await waitFor('the canary at weight 25', async () => (await routeWeights(release.ns, 'review'))?.canary === 25, { timeoutMs: 60_000 });

    await kubectl(['label', 'namespace', release.ns, 'kube-canary.io/enabled-']);

    const ended = await waitFor('the release to be ended', async () => {
      const d = await getDeployment(release.ns, 'review');
      return d.spec?.paused !== true && d.metadata?.annotations?.[ANN_REVISION] === undefined ? d : undefined;
    }, { timeoutMs: 30_000 });
    const s = statusOf(ended)!;
    assert.equal(s.phase, 'Succeeded');
    assert.equal(s['cancelled'], true);
    assert.match(String(s['message']), /no longer opted in/);
    const w = await routeWeights(release.ns, 'review');
    assert.deepEqual([w?.stable, w?.canary], [100, 0], 'traffic back on stable');
    await waitFor('the canary Deployment to be gone', async () => getDeployment(release.ns, 'review-canary').then(() => false, () => true), { timeoutMs: 30_000 });
    const rolled = await waitForDeploymentReady(release.ns, 'review', 2);
    assert.equal(rolled.spec?.template.spec?.containers[0]?.image, 'review:1.8.0', 'plain Kubernetes rolls out what the user wrote');
    const event = await waitFor('the OptedOut Event', async () => (await deploymentEvents(release.ns, 'review')).find((x) => x.reason === 'OptedOut'), { timeoutMs: 15_000 });
    assert.equal(event.type, 'Warning');
    assert.match(event.message ?? '', /cancelled: review\.\S+ is no longer opted in/);

    // From now on a plain Deployment: the next image is not captured.
    await ship(release.ns, 'review', 'review:1.9.0', { errorRate: 0, latencyMs: 30 });
    const plain = await getDeployment(release.ns, 'review');
    assert.equal(plain.metadata?.annotations?.[ANN_REVISION], undefined);
    assert.notEqual(plain.spec?.paused, true);
  });
});
