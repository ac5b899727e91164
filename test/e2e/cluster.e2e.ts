/**
 * Issue #3, test 1: the local control plane itself. A plain Deployment (not opted in to
 * kube-canary) becomes Available with 3 Ready pods on the kwok nodes, and a `kubectl set image`
 * rolls out to completion.
 */
import assert from 'node:assert/strict';
import {
  applyDeployment,
  clusterEnv,
  createNamespace,
  deleteNamespace,
  deploymentManifest,
  getDeployment,
  kubectl,
  podImages,
  podsOf,
  waitFor,
  waitForDeploymentReady,
} from './harness/cluster.js';

describe('local control plane', function () {
  let ns = '';

  before(async function () {
    ns = await createNamespace('e2e-plain');
  });
  after(async function () {
    await deleteNamespace(ns);
  });

  it('serves the expected Kubernetes version on 127.0.0.1 with Ready kwok nodes', async function () {
    const env = clusterEnv();
    assert.match(env.apiserverUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
    const version = JSON.parse((await kubectl(['version', '-o', 'json'])).stdout) as { serverVersion?: { gitVersion?: string } };
    assert.equal(version.serverVersion?.gitVersion, env.kubeVersion);
    const nodes = JSON.parse((await kubectl(['get', 'nodes', '-l', 'type=kwok', '-o', 'json'])).stdout) as {
      items: { status?: { conditions?: { type: string; status: string }[] } }[];
    };
    assert.ok(nodes.items.length >= 1, 'expected at least one kwok node');
    for (const n of nodes.items) {
      assert.equal(n.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
    }
  });

  it('1. a 3-replica Deployment becomes Available, and `kubectl set image` rolls out when not opted in', async function () {
    await applyDeployment(deploymentManifest({ name: 'plain', namespace: ns, image: 'plain:1.0.0', replicas: 3 }));
    await waitForDeploymentReady(ns, 'plain', 3);
    const pods = await podsOf(ns, 'plain');
    assert.equal(pods.length, 3);
    assert.deepEqual(podImages(pods), ['plain:1.0.0', 'plain:1.0.0', 'plain:1.0.0']);
    assert.ok(pods.every((p) => p.spec?.nodeName?.startsWith('kwok-node-')), 'pods are scheduled on the kwok nodes');

    const set = await kubectl(['-n', ns, 'set', 'image', 'deployment/plain', 'plain=plain:1.1.0']);
    assert.doesNotMatch(set.stderr, /kube-canary/i, 'no kube-canary warning for a Deployment that is not opted in');
    const status = await kubectl(['-n', ns, 'rollout', 'status', 'deployment/plain', '--timeout=120s'], { timeoutMs: 130_000 });
    assert.match(status.stdout, /successfully rolled out/);

    const d = await getDeployment(ns, 'plain');
    assert.notEqual(d.spec?.paused, true);
    assert.equal(d.spec?.template.spec?.containers[0]?.image, 'plain:1.1.0');
    await waitFor('old pods of plain to be gone', async () => {
      const images = podImages(await podsOf(ns, 'plain'));
      return images.length === 3 && images.every((i) => i === 'plain:1.1.0') ? images : undefined;
    });
  });
});
