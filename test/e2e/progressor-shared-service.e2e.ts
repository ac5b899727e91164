/**
 * Two opted-in Deployments behind one Service (both name it in kube-canary.io/service): one
 * release at a time shifts that Service's traffic. The second one shipped waits, with no canary
 * and without touching the routes, until the first has ended, then runs. Before, both wrote the
 * one VirtualService in turn (weights flapping, RoutesRestored Warnings on both sides) and the
 * canary subset selected both canaries.
 */
import assert from 'node:assert/strict';
import { getDeployment, waitFor, waitForDeploymentReady } from './harness/cluster.js';
import { stepsOnlyAnalysis, useProgressorEnv } from './harness/progressor.js';
import { applyObjects, deploymentEvents, reviewManifests, routeWeights, ship, statusOf, waitForPhase } from './harness/release.js';

describe('progressor: two Deployments behind one Service', function () {
  this.timeout(240_000);
  const scenario = useProgressorEnv('progressor-shared-service', { intervalS: 2 });

  it('runs their releases one after the other: the later waits without a canary and without touching the routes', async () => {
    const ns = scenario.ns;
    const objs: object[] = [];
    // wb checks every 20 s: waiting, it would look again only that much later; the end of wa's release wakes it at once.
    const wbAnalysis = JSON.stringify({ interval: '20s', threshold: 2, maxWeight: 10, stepWeight: 10, metrics: [] });
    for (const name of ['wa', 'wb']) {
      const { service, deployment } = reviewManifests({ namespace: ns, name, image: `${name}:1`, analysis: name === 'wa' ? stepsOnlyAnalysis(2) : wbAnalysis, progressDeadline: '60s' });
      deployment.metadata!.annotations!['kube-canary.io/service'] = 'web';
      deployment.spec!.template.metadata!.labels!['tier'] = 'web';
      objs.push(deployment);
      if (name === 'wa') objs.push({ ...service, metadata: { name: 'web', namespace: ns }, spec: { selector: { tier: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } });
    }
    await applyObjects(...objs);
    await Promise.all(['wa', 'wb'].map((n) => waitForDeploymentReady(ns, n, 2)));
    const p = scenario.env.start('only');
    const logs = () => p.output().slice(-4000);

    await ship(ns, 'wa', 'wa:2');
    await waitFor('wa at weight 10', async () => (statusOf(await getDeployment(ns, 'wa'))?.weight ?? 0) >= 10, { timeoutMs: 60_000, describe: logs });
    await ship(ns, 'wb', 'wb:2');
    const held = await waitFor('wb to wait for wa', async () => {
      const s = statusOf(await getDeployment(ns, 'wb'));
      return s?.['heldBy'] === 'wa' ? s : undefined;
    }, { timeoutMs: 20_000, describe: logs });
    assert.match(String(held['message']), /Waiting for the release of wa\.\S+ to end: it routes Service web too/);

    // While wa runs: wb has no canary, and the weights only go up (nobody undoes wa's steps).
    const seen: number[] = [];
    let wbCanaryWhileWa = false;
    for (;;) {
      const wa = statusOf(await getDeployment(ns, 'wa'));
      if (!wa || ['Promoting', 'Finalising', 'Succeeded', 'Failed'].includes(wa.phase)) break;
      seen.push((await routeWeights(ns, 'web'))?.canary ?? -1);
      if (await getDeployment(ns, 'wb-canary').then(() => true, () => false)) wbCanaryWhileWa = true;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(wbCanaryWhileWa, false, 'no canary of wb while wa ran');
    assert.deepEqual(seen, [...seen].sort((a, b) => a - b), `canary weights of Service web while wa ran: ${seen.join(',')}`);

    assert.equal((await waitForPhase(ns, 'wa', ['Succeeded', 'Failed'], 60_000, logs)).phase, 'Succeeded');
    await waitFor('wb to start once wa ended (woken, not polled 20 s later)', async () => {
      const s = statusOf(await getDeployment(ns, 'wb'));
      return s && s['heldBy'] === undefined;
    }, { timeoutMs: 4_000, describe: logs });
    const wb = await waitForPhase(ns, 'wb', ['Succeeded', 'Failed'], 90_000, logs);
    assert.equal(wb.phase, 'Succeeded');
    assert.equal((await getDeployment(ns, 'wb')).spec?.template.spec?.containers[0]?.image, 'wb:2');
    assert.equal((await routeWeights(ns, 'web'))?.canary, 0);
    for (const n of ['wa', 'wb']) {
      const warnings = (await deploymentEvents(ns, n)).filter((e) => e.reason === 'RoutesRestored' || e.reason === 'RoutesRecreated');
      assert.deepEqual(warnings.map((e) => e.message), [], `no route fights on ${n}`);
    }
  });
});
