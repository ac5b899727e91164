/**
 * A gate that takes long (a load-test webhook, an approval service that hangs) holds its own
 * release, not the progressor: with one reconcile slot (--concurrency 1), another release ships
 * from start to promotion while the first one's `rollout` webhook has not answered; once it
 * answers, the first release steps on at once.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { getDeployment, kubectl, waitFor, waitForDeploymentReady } from './harness/cluster.js';
import { stepsOnlyAnalysis, useProgressorEnv } from './harness/progressor.js';
import { applyObjects, reviewManifests, ship, statusOf, waitForPhase } from './harness/release.js';

describe('progressor: a slow gate does not hold other releases', function () {
  this.timeout(240_000);
  const scenario = useProgressorEnv('progressor-slow-gates', { intervalS: 2 });
  let hook: http.Server;
  let port: number;
  const held: http.ServerResponse[] = [];
  let hold = true;
  let calls = 0;

  before(async () => {
    hook = http.createServer((req, res) => {
      calls += 1;
      req.resume();
      if (hold) held.push(res);
      else res.writeHead(200).end('ok');
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    port = (hook.address() as AddressInfo).port;
  });

  after(async () => {
    for (const r of held) r.destroy();
    hook.closeAllConnections();
    await new Promise((r) => hook.close(r));
  });

  it('promotes another release while a rollout webhook hangs (one reconcile slot), and goes on when it answers', async () => {
    const ns = scenario.ns;
    const slow = { ...(JSON.parse(stepsOnlyAnalysis(2)) as object), webhooks: [{ name: 'load-test', type: 'rollout', url: `http://127.0.0.1:${port}/`, timeout: '10m' }] };
    const review = reviewManifests({ namespace: ns, image: 'review:1.7.0', analysis: JSON.stringify(slow), progressDeadline: '60s' });
    const details = reviewManifests({ namespace: ns, name: 'details', image: 'details:1.0.0', analysis: stepsOnlyAnalysis(2), progressDeadline: '60s' });
    await applyObjects(review.deployment, details.service, details.deployment);
    await waitForDeploymentReady(ns, 'details', 2);
    const p = scenario.env.start('only', ['--concurrency', '1']);
    const logs = () => p.output().slice(-4000);

    await ship(ns, 'review', 'review:1.8.0');
    await waitFor('the load-test webhook to be called (and hang)', async () => held.length > 0, { timeoutMs: 60_000, describe: logs });
    const stuckAt = statusOf(await getDeployment(ns, 'review'));

    await ship(ns, 'details', 'details:1.1.0');
    const done = await waitForPhase(ns, 'details', ['Succeeded', 'Failed'], 90_000, logs);
    assert.equal(done.phase, 'Succeeded');
    const d = await getDeployment(ns, 'details');
    assert.equal(d.spec?.template.spec?.containers[0]?.image, 'details:1.1.0');

    // Meanwhile review waited for its one check, neither stepped on nor asked again.
    const during = statusOf(await getDeployment(ns, 'review'));
    assert.equal(during?.phase, stuckAt?.phase);
    assert.equal(during?.weight, stuckAt?.weight);
    assert.equal(calls, 1, 'one call of the hanging webhook, not one per reconcile');

    hold = false;
    for (const r of held.splice(0)) r.writeHead(200).end('ok');
    const after = await waitFor('review to step on once the webhook answered', async () => {
      const s = statusOf(await getDeployment(ns, 'review'));
      return s && (s.weight ?? 0) > (stuckAt?.weight ?? 0) ? s : undefined;
    }, { timeoutMs: 20_000, describe: logs });
    assert.equal(after.phase, 'Progressing');
    const end = await waitForPhase(ns, 'review', ['Succeeded', 'Failed'], 90_000, logs);
    assert.equal(end.phase, 'Succeeded');
  });

  it('acts on an abort at once while that webhook hangs: rolled back, the hanging check dropped', async () => {
    const ns = scenario.ns;
    hold = true;
    calls = 0;
    const p = scenario.env.start('abort');
    const logs = () => p.output().slice(-4000);
    await ship(ns, 'review', 'review:1.9.0');
    await waitFor('the load-test webhook to be called (and hang)', async () => held.length > 0, { timeoutMs: 60_000, describe: logs });
    await kubectl(['-n', ns, 'annotate', 'deployment', 'review', 'kube-canary.io/request=abort']);
    const end = await waitForPhase(ns, 'review', ['Succeeded', 'Failed'], 20_000, logs);
    assert.equal(end.phase, 'Failed');
    const d = await getDeployment(ns, 'review');
    assert.equal(d.spec?.template.spec?.containers[0]?.image, 'review:1.8.0', 'back on the promoted revision');
    assert.equal(d.metadata?.annotations?.['kube-canary.io/request'], undefined, 'the request was acted on');
    assert.equal(calls, 1);
  });
});
