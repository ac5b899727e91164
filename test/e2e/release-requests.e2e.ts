/**
 * kube-canary.io/request on the real control plane, the way a user asks before the kubectl
 * plugin exists (`kubectl annotate deployment review kube-canary.io/request=...`):
 * - pause mid-release: the weight stays for more than 3 intervals while the canary is healthy
 *   (the gates would pass) and no gate runs; resume: promoted;
 * - abort mid-release: rolled back, stable pods untouched, failed revision recorded, the same
 *   image refused; retry: the same image accepted again (then promote: promoted at once);
 * - an invalid value is refused by the webhook.
 */
import assert from 'node:assert/strict';
import { getDeployment, podsOf, waitFor, waitForDeploymentReady } from './harness/cluster.js';
import {
  ANN_FAILED_REVISION,
  ANN_REVISION,
  ReleaseRecorder,
  articleAnalysis,
  deploymentEvents,
  inOrder,
  kubectl,
  routeWeights,
  ship,
  statusOf,
  waitForPhase,
  useReviewRelease,
} from './harness/release.js';

const INTERVAL_S = 3;
const ANN_REQUEST = 'kube-canary.io/request';
const HEALTHY = { errorRate: 0, latencyMs: 30 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('release: requests by annotation (pause, resume, abort, retry, promote)', function () {
  this.timeout(300_000);
  const release = useReviewRelease('release-requests', { analysis: articleAnalysis(INTERVAL_S, 5), behaviour: HEALTHY });

  const request = (value: string, allowFailure = false) => kubectl(['-n', release.ns, 'annotate', '--overwrite', 'deployment', 'review', `${ANN_REQUEST}=${value}`], { allowFailure });
  const stablePods = async () => (await podsOf(release.ns, 'review')).filter((p) => p.metadata?.labels?.['version'] !== 'canary').map((p) => p.metadata!.name!).sort();
  const events = async () => (await deploymentEvents(release.ns, 'review')).map((e) => e.message ?? '');
  /** Sum of kube_canary_analysis_checks_total for this release on the progressor's /metrics. */
  const checksRun = async () => {
    const text = await (await fetch(release.env.progressor.metricsUrl)).text();
    return text
      .split('\n')
      .filter((l) => l.startsWith('kube_canary_analysis_checks_total{') && l.includes(`namespace="${release.ns}"`))
      .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
  };
  const phaseGauge = async (phase: string) => {
    const text = await (await fetch(release.env.progressor.metricsUrl)).text();
    return text.split('\n').find((l) => l.startsWith('kube_canary_release_phase{') && l.includes(`namespace="${release.ns}"`) && l.includes(`phase="${phase}"`))?.split(' ').at(-1);
  };
  /** The new release is Progressing with traffic on the canary (routes change before the status commit: wait for both). */
  const canaryGetsTraffic = (rec: ReleaseRecorder, revision: string) =>
    waitFor(
      'the canary to get traffic',
      async () => {
        const s = statusOf(await getDeployment(release.ns, 'review'));
        return s?.revision === revision && s.phase === 'Progressing' && s.weight > 0 && ((await routeWeights(release.ns, 'review'))?.canary ?? 0) > 0;
      },
      { timeoutMs: 90_000, describe: () => rec.describe() },
    );
  const revisionOf = async () => {
    const r = (await getDeployment(release.ns, 'review')).metadata?.annotations?.[ANN_REVISION];
    assert.ok(r, 'the webhook stamps kube-canary.io/revision');
    return r;
  };


  it('pause holds the weight for more than 3 intervals of healthy metrics with no gate run; resume promotes', async () => {
    const rec = new ReleaseRecorder(release.ns, 'review').start();
    try {
      await ship(release.ns, 'review', 'review:1.8.0');
      await canaryGetsTraffic(rec, await revisionOf());
      await request('pause');
      const paused = await waitForPhase(release.ns, 'review', ['Paused'], 15_000, () => rec.describe());
      assert.ok(paused.weight > 0 && paused.weight < 100, `paused mid-release: ${JSON.stringify(paused)}`);
      assert.match(paused.message, /kubectl annotate deployment review -n \S+ kube-canary.io\/request=resume/);
      const d = await getDeployment(release.ns, 'review');
      assert.equal(d.metadata?.annotations?.[ANN_REQUEST], undefined, 'the request is removed when acted on');
      assert.equal(d.spec?.paused, true);
      assert.equal(await phaseGauge('Paused'), '1');

      const checks = await checksRun();
      const pausedAt = Date.now();
      await sleep(INTERVAL_S * 1000 * 3.5);
      // The canary is healthy (these numbers come from Prometheus through the simulator), so
      // only the pause kept the weight: no gate ran, and routes and status did not move.
      assert.equal(await checksRun(), checks, 'no gate ran while paused');
      const held = rec.timeline.filter((e) => e.t >= pausedAt);
      assert.ok(held.every((e) => e.routes === `${100 - paused.weight}/${paused.weight}` && e.phase === 'Paused'), `weight held:\n${rec.describe()}`);
      const still = statusOf(await getDeployment(release.ns, 'review'))!;
      assert.equal(still.phase, 'Paused');
      assert.equal(still.weight, paused.weight);

      await request('resume');
      const final = await waitForPhase(release.ns, 'review', ['Succeeded', 'Failed'], 120_000, () => rec.describe());
      assert.equal(final.phase, 'Succeeded', rec.describe());
      const after = await waitForDeploymentReady(release.ns, 'review', 2);
      assert.equal(after.spec?.template.spec?.containers[0]?.image, 'review:1.8.0');
      assert.equal(after.metadata?.annotations?.[ANN_REQUEST], undefined);

      const id = `review\\.${release.ns}`;
      const order = inOrder(await events(), [
        new RegExp(`^Release of ${id} paused by request at canary weight ${paused.weight}$`),
        new RegExp(`^Release of ${id} resumed by request at canary weight ${paused.weight}: next check in ${INTERVAL_S}s$`),
        new RegExp(`^Promoting revision \\w+ into ${id}$`),
        new RegExp(`^Promotion completed! Scaling down review-canary\\.${release.ns}$`),
      ]);
      assert.ok(order.ok, `events:\n${(await events()).join('\n')}`);
    } finally {
      await rec.stop();
    }
  });

  it('refuses an invalid request value, naming it and the allowed ones', async () => {
    const out = await request('rollback', true);
    assert.notEqual(out.code, 0);
    assert.match(out.stderr, /kube-canary.io\/request: "rollback" is not a request; allowed: promote, abort, pause, resume, retry/);
    assert.equal((await getDeployment(release.ns, 'review')).metadata?.annotations?.[ANN_REQUEST], undefined);
  });

  it('abort rolls back without touching the stable pods and records the failed revision; retry lets the same image in again', async () => {
    const before = await stablePods();
    const rec = new ReleaseRecorder(release.ns, 'review').start();
    try {
      await ship(release.ns, 'review', 'review:1.9.0');
      const revision = await revisionOf();
      await canaryGetsTraffic(rec, revision);
      await request('abort');
      const final = await waitForPhase(release.ns, 'review', ['Succeeded', 'Failed'], 60_000, () => rec.describe());
      assert.equal(final.phase, 'Failed', rec.describe());
      assert.equal(final.message, `Rolling back review.${release.ns}: aborted by request`);
      assert.ok(!rec.phases().includes('Promoting'), rec.describe());

      const d = await waitForDeploymentReady(release.ns, 'review', 2);
      assert.equal(d.spec?.template.spec?.containers[0]?.image, 'review:1.8.0', 'the stable template is restored');
      assert.notEqual(d.spec?.paused, true);
      assert.equal(d.metadata?.annotations?.[ANN_FAILED_REVISION], revision);
      assert.equal(d.metadata?.annotations?.[ANN_REQUEST], undefined);
      assert.deepEqual(await stablePods(), before, 'the stable pods are the same pods (no churn)');
      await assert.rejects(getDeployment(release.ns, 'review-canary'));
      const w = await routeWeights(release.ns, 'review');
      assert.deepEqual([w?.stable, w?.canary], [100, 0]);
      assert.ok((await events()).some((m) => new RegExp(`^Release of review\\.${release.ns} aborted by request at canary weight \\d+: rolling back$`).test(m)));

      const refused = await ship(release.ns, 'review', 'review:1.9.0', undefined, true);
      assert.notEqual(refused.code, 0, `the webhook must refuse the aborted revision: ${refused.stdout}${refused.stderr}`);
      assert.match(refused.stderr, /kube-canary.io\/request=retry/);
    } finally {
      await rec.stop();
    }

    await request('retry');
    await waitFor('the failed revision to be cleared', async () => {
      const a = (await getDeployment(release.ns, 'review')).metadata?.annotations ?? {};
      return a[ANN_FAILED_REVISION] === undefined && a[ANN_REQUEST] === undefined;
    }, { timeoutMs: 15_000 });
    assert.ok((await events()).some((m) => new RegExp(`^Revision \\w+ of review\\.${release.ns} may be shipped again$`).test(m)));

    const rec2 = new ReleaseRecorder(release.ns, 'review').start();
    try {
      const accepted = await ship(release.ns, 'review', 'review:1.9.0');
      assert.match(accepted.stderr, /captured revision/);
      // And promote skips the rest of its analysis.
      await canaryGetsTraffic(rec2, await revisionOf());
      await request('promote');
      const final = await waitForPhase(release.ns, 'review', ['Succeeded', 'Failed'], 60_000, () => rec2.describe());
      assert.equal(final.phase, 'Succeeded', rec2.describe());
      const d = await waitForDeploymentReady(release.ns, 'review', 2);
      assert.equal(d.spec?.template.spec?.containers[0]?.image, 'review:1.9.0');
      const all = await events();
      const asked = all.findIndex((m) => new RegExp(`^Promotion of review\\.${release.ns} requested: skipping the remaining analysis$`).test(m));
      assert.ok(asked >= 0, all.join('\n'));
      assert.ok(!all.slice(asked).some((m) => /^Advance /.test(m)), `no step after the promotion request:\n${all.join('\n')}`);
    } finally {
      await rec2.stop();
    }
  });
});
