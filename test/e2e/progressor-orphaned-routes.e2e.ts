/**
 * The VirtualService and DestinationRule kube-canary generated lose their owner when the
 * Deployment is deleted with --cascade=orphan. Created again under the same name, the
 * Deployment's next release makes it their owner, so a later plain delete takes them too
 * instead of leaking them.
 */
import assert from 'node:assert/strict';
import { getDeployment, kubectl, waitFor, waitForDeploymentReady } from './harness/cluster.js';
import { deployReview, useProgressorEnv } from './harness/progressor.js';
import { ReleaseRecorder, ship, waitForPhase } from './harness/release.js';

const ROUTING = ['virtualservice/review', 'destinationrule/review'];

/** The owner uids of each generated routing object; undefined for one that is gone. */
async function owners(ns: string): Promise<Array<string[] | undefined>> {
  return Promise.all(
    ROUTING.map(async (o) => {
      const r = await kubectl(['-n', ns, 'get', o, '-o', 'json'], { allowFailure: true });
      if (r.code !== 0) return undefined;
      return ((JSON.parse(r.stdout) as { metadata: { ownerReferences?: Array<{ uid: string }> } }).metadata.ownerReferences ?? []).map((x) => x.uid);
    }),
  );
}

describe('progressor: generated routes orphaned by kubectl delete --cascade=orphan', function () {
  this.timeout(300_000);
  const scenario = useProgressorEnv('progressor-orphaned', { intervalS: 2, userRouting: false });

  it('are owned again by the Deployment created again, and go with it when it is deleted', async () => {
    const ns = scenario.ns;
    const proc = scenario.env.start('only');
    const rec = new ReleaseRecorder(ns, 'review').start(250);
    const describe = async () => `${rec.describe()}\nowners: ${JSON.stringify(await owners(ns))}\n${proc.output().slice(-3000)}`;
    try {
      await ship(ns, 'review', 'review:1.8.0');
      await waitForPhase(ns, 'review', ['Succeeded'], 90_000, () => rec.describe());
      const first = (await getDeployment(ns, 'review')).metadata!.uid!;
      assert.deepEqual(await owners(ns), [[first], [first]], 'generated, owned by the Deployment');

      await kubectl(['-n', ns, 'delete', 'deployment', 'review', '--cascade=orphan']);
      await waitFor('the garbage collector to orphan the routing objects', async () => (await owners(ns)).every((o) => o?.length === 0), { timeoutMs: 30_000, describe });

      await deployReview(ns, { intervalS: 2, userRouting: false });
      await waitForDeploymentReady(ns, 'review', 2);
      const second = (await getDeployment(ns, 'review')).metadata!.uid!;
      assert.notEqual(second, first);
      await ship(ns, 'review', 'review:1.8.0');
      await waitFor('the next release to own the routing objects', async () => JSON.stringify(await owners(ns)) === JSON.stringify([[second], [second]]), { timeoutMs: 60_000, describe });
      await waitForPhase(ns, 'review', ['Succeeded'], 90_000, () => rec.describe());

      await kubectl(['-n', ns, 'delete', 'deployment', 'review']);
      await waitFor('the routing objects to go with the Deployment', async () => (await owners(ns)).every((o) => o === undefined), { timeoutMs: 30_000, describe });
    } finally {
      await rec.stop();
    }
  });
});
