/**
 * The user's VirtualService (the canary article's) with a `match` route in front of the default
 * route that pins some requests to stable: a release weights the default route only, and the
 * pinned route stays exactly as written, mid-release and after promotion (ADR 0011). With only a
 * pinned route, the release is held with a ReconcileError that says what to add.
 */
import assert from 'node:assert/strict';
import { getDeployment, kubectl, waitFor } from './harness/cluster.js';
import { useProgressorEnv } from './harness/progressor.js';
import { ReleaseRecorder, deploymentEvents, routeWeights, ship, statusOf, waitForPhase } from './harness/release.js';

const PINNED = { match: [{ headers: { 'x-debug': { exact: '1' } } }], route: [{ destination: { host: 'review', subset: 'stable' } }] };

interface VirtualService {
  metadata: { resourceVersion: string };
  spec: { http: unknown[] };
}

async function virtualService(ns: string): Promise<VirtualService> {
  return JSON.parse((await kubectl(['-n', ns, 'get', 'virtualservice', 'review-virtualservice', '-o', 'json'])).stdout) as VirtualService;
}

describe('progressor: a match route in the user VirtualService', function () {
  this.timeout(180_000);

  describe('before the default route', () => {
    const scenario = useProgressorEnv('progressor-match', { intervalS: 3 });

    it('is left as written while the default route carries the release', async () => {
      await kubectl(['-n', scenario.ns, 'patch', 'virtualservice', 'review-virtualservice', '--type=json', '-p', JSON.stringify([{ op: 'add', path: '/spec/http/0', value: PINNED }])]);
      const pinned = (await virtualService(scenario.ns)).spec.http[0];
      assert.deepEqual(pinned, PINNED);
      const proc = scenario.env.start('only');
      const rec = new ReleaseRecorder(scenario.ns, 'review').start(150);
      const describe = () => `${rec.describe()}\n${proc.output().slice(-3000)}`;
      try {
        await ship(scenario.ns, 'review', 'review:1.8.0');
        const mid = await waitFor('canary weight 20 on the default route', async () => {
          const r = await routeWeights(scenario.ns, 'review');
          return (r?.canary ?? 0) >= 20 ? r : undefined;
        }, { timeoutMs: 60_000, describe });
        assert.equal(mid.stable + mid.canary, 100);
        assert.deepEqual((await virtualService(scenario.ns)).spec.http[0], pinned, 'mid-release');

        await waitForPhase(scenario.ns, 'review', ['Succeeded'], 90_000, describe);
        assert.equal((await getDeployment(scenario.ns, 'review')).spec?.template.spec?.containers[0]?.image, 'review:1.8.0');
        assert.deepEqual(await routeWeights(scenario.ns, 'review'), { stable: 100, canary: 0, vs: 'review-virtualservice' });
        assert.deepEqual((await virtualService(scenario.ns)).spec.http[0], pinned, 'after promotion');
      } finally {
        await rec.stop();
      }
    });
  });

  describe('as the only route to stable', () => {
    const scenario = useProgressorEnv('progressor-match-only', { intervalS: 3 });

    it('holds the release, naming what to add, and writes nothing into it', async () => {
      await kubectl(['-n', scenario.ns, 'patch', 'virtualservice', 'review-virtualservice', '--type=merge', '-p', JSON.stringify({ spec: { http: [PINNED] } })]);
      const before = await virtualService(scenario.ns);
      const proc = scenario.env.start('only');
      await ship(scenario.ns, 'review', 'review:1.8.0');
      const blocked = await waitFor('a ReconcileError Event', async () => (await deploymentEvents(scenario.ns, 'review')).find((e) => e.reason === 'ReconcileError'), { timeoutMs: 60_000, describe: () => proc.output().slice(-3000) });
      assert.match(blocked.message ?? '', /^Release blocked, retrying: VirtualService review-virtualservice routes host review to subset "stable" only in routes whose match picks a segment of the requests \(headers, query parameters, source\), which kube-canary leaves alone; add a route without match/);
      const d = await getDeployment(scenario.ns, 'review');
      assert.equal(d.spec?.paused, true, 'the release is held, not promoted without a canary share');
      assert.ok((statusOf(d)?.weight ?? 0) === 0);
      assert.equal((await virtualService(scenario.ns)).metadata.resourceVersion, before.metadata.resourceVersion, 'the VirtualService was not written');
      assert.equal((await kubectl(['-n', scenario.ns, 'get', 'virtualservices', '-o', 'name'])).stdout.trim(), 'virtualservice.networking.istio.io/review-virtualservice', 'no second VirtualService for the host');
    });
  });
});
