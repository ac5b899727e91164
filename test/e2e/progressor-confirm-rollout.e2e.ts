/**
 * confirm-rollout gates the canary itself, as in Flagger: while the hook refuses, the release
 * waits with no `<name>-canary` Deployment and no canary pods (they would take traffic through
 * the Service's selector, mesh or not), the wait is said in one Event however many intervals
 * and progressor restarts it lasts, and the progress deadline does not run. Once the hook
 * approves, the release goes on to promotion.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { clients, getDeployment, waitFor } from './harness/cluster.js';
import { LEASE, leaseHolder, stepsOnlyAnalysis, useProgressorEnv } from './harness/progressor.js';
import { ReleaseRecorder, applyObjects, deploymentEvents, reviewManifests, ship, statusOf, waitForPhase } from './harness/release.js';

const PROGRESSOR_NS = 'kube-canary';
const DEADLINE_MS = 15_000;

describe('progressor: confirm-rollout holds the canary', function () {
  this.timeout(240_000);
  const scenario = useProgressorEnv('progressor-confirm-rollout', { intervalS: 2 });
  let hook: http.Server;
  let port: number;
  let refuse = true;
  let calls = 0;

  before(async () => {
    hook = http.createServer((req, res) => {
      calls += 1;
      req.resume();
      res.writeHead(refuse ? 503 : 200).end(refuse ? 'not yet' : 'ok');
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    port = (hook.address() as AddressInfo).port;
  });

  after(async () => {
    hook.closeAllConnections();
    await new Promise((r) => hook.close(r));
  });

  it('makes no canary and says the wait once while the hook refuses (across a restart), then promotes once it approves', async () => {
    const ns = scenario.ns;
    const analysis = { ...(JSON.parse(stepsOnlyAnalysis(2)) as object), webhooks: [{ name: 'cr', type: 'confirm-rollout', url: `http://127.0.0.1:${port}/toggle`, timeout: '2s' }] };
    const review = reviewManifests({ namespace: ns, image: 'review:1.7.0', analysis: JSON.stringify(analysis), progressDeadline: `${DEADLINE_MS / 1000}s` });
    await applyObjects(review.deployment);
    let p = scenario.env.start('first');
    const rec = new ReleaseRecorder(ns, 'review').start(200);
    const logs = () => `${rec.describe()}\n--- progressor:\n${p.output().slice(-4000)}`;
    const waitingEvents = async () => (await deploymentEvents(ns, 'review')).filter((e) => e.reason === 'Waiting' && (e.message ?? '').startsWith('Waiting for confirm-rollout approval'));
    // Every 300 ms while held: no canary Deployment, no canary pod.
    const violations: string[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        try {
          const deps = await clients().apps.listNamespacedDeployment({ namespace: ns });
          const pods = await clients().core.listNamespacedPod({ namespace: ns, labelSelector: 'version=canary' });
          if (deps.items.some((d) => d.metadata?.name === 'review-canary')) violations.push(`${new Date().toISOString()} review-canary exists`);
          if (pods.items.length > 0) violations.push(`${new Date().toISOString()} canary pods: ${pods.items.map((x) => x.metadata?.name).join(', ')}`);
        } catch {
          // transient API errors: keep watching
        }
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    try {
      await ship(ns, 'review', 'review:1.8.0');
      const heldFrom = Date.now();
      const held = await waitFor('Waiting on confirm-rollout', async () => {
        const s = statusOf(await getDeployment(ns, 'review'));
        return s?.phase === 'Waiting' && s.waitingOn === 'confirm-rollout' ? s : undefined;
      }, { timeoutMs: 60_000, describe: logs });
      assert.match(held.message, /^Waiting for confirm-rollout approval of review\.\S+: .*503/);

      await waitFor('four calls of the hook', () => calls >= 4, { timeoutMs: 30_000, describe: logs });
      // A progressor restarted mid-wait picks the wait up from the status: not said again.
      await p.stop();
      p = scenario.env.start('second');
      await waitFor('the second progressor to lead', async () => (await leaseHolder(PROGRESSOR_NS, scenario.env.leaseName)) === 'second', { timeoutMs: LEASE.durationMs + 30_000, describe: logs });
      const before = calls;
      await waitFor('three more calls of the hook', () => calls >= before + 3, { timeoutMs: 30_000, describe: logs });
      // Held past the progress deadline: the wait for approval does not count toward it.
      await waitFor('the progress deadline to pass', () => Date.now() - heldFrom > DEADLINE_MS + 2000, { timeoutMs: DEADLINE_MS + 5000 });

      const s = statusOf(await getDeployment(ns, 'review'));
      assert.equal(s?.phase, 'Waiting', logs());
      assert.equal(s?.weight, 0);
      const said = await waitingEvents();
      assert.equal(said.length, 1, said.map((e) => `${e.reportingInstance}: ${e.message}`).join('\n'));
      assert.deepEqual(violations, []);
      assert.ok(rec.timeline.every((e) => !e.routes || e.routes === '100/0'), logs());

      watching = false;
      await watcher;
      refuse = false;
      const done = await waitForPhase(ns, 'review', ['Succeeded', 'Failed'], 90_000, logs);
      assert.equal(done.phase, 'Succeeded', logs());
      assert.equal((await getDeployment(ns, 'review')).spec?.template.spec?.containers[0]?.image, 'review:1.8.0');
      const messages = (await deploymentEvents(ns, 'review')).map((e) => e.message ?? '');
      assert.ok(messages.some((m) => m.startsWith('Advance review.') && m.endsWith('canary weight 10')), messages.join('\n'));
      assert.equal((await waitingEvents()).length, 1, messages.join('\n'));
    } finally {
      watching = false;
      await watcher;
      await rec.stop();
    }
  });
});
