/**
 * The traffic simulator (a faithful simulator of the Istio data plane) against the real API:
 * it follows VirtualService weights over DestinationRule subsets, reads each version's
 * behaviour from its pods, and stops exporting a workload whose pods are gone.
 */
import assert from 'node:assert/strict';
import { createNamespace, deleteNamespace, kubectl, waitFor, waitForDeploymentReady } from './harness/cluster.js';
import { startSimulator, type SimulatorProcess } from './harness/release.js';

describe('traffic simulator against the real API server', function () {
  this.timeout(120_000);
  let ns = '';
  let sim: SimulatorProcess | undefined;

  const deployment = (name: string, version: string, replicas: number, ann: Record<string, string>) => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: ns },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'review', version } },
      template: { metadata: { labels: { app: 'review', version }, annotations: ann }, spec: { containers: [{ name: 'review', image: `review:${version}` }] } },
    },
  });
  const vs = (stable: number, canary: number) => ({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'review', namespace: ns },
    spec: { hosts: ['review'], http: [{ route: [{ destination: { host: 'review', subset: 'stable' }, weight: stable }, { destination: { host: 'review', subset: 'canary' }, weight: canary }] }] },
  });
  const apply = (...items: object[]) => kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }) });
  const plan = async () => (await (await fetch(`http://${sim!.address}/debug/plan`)).json()) as { flows: Array<{ workload: string; rps: number; errorRate: number; latencyMs: number }> };
  const rates = async () => Object.fromEntries((await plan()).flows.map((f) => [f.workload, f.rps]));

  before(async () => {
    ns = await createNamespace('simulator');
    await apply(
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'review', namespace: ns }, spec: { selector: { app: 'review' }, ports: [{ port: 80 }] } },
      deployment('review', 'stable', 2, { 'simulator.kube-canary.io/latency-ms': '40' }),
      deployment('review-canary', 'canary', 1, { 'simulator.kube-canary.io/error-rate': '0.3', 'simulator.kube-canary.io/latency-ms': '300' }),
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: { name: 'review', namespace: ns },
        spec: { host: 'review', subsets: [{ name: 'stable', labels: { version: 'stable' } }, { name: 'canary', labels: { version: 'canary' } }] },
      },
      vs(75, 25),
    );
    await waitForDeploymentReady(ns, 'review', 2);
    await waitForDeploymentReady(ns, 'review-canary', 1);
    sim = await startSimulator({ namespaces: [ns], rps: 100, pollMs: 300 });
  });

  after(async () => {
    await sim?.stop();
    if (ns) await deleteNamespace(ns);
  });

  it('splits the rate by VirtualService weight, with each version\'s behaviour', async () => {
    await waitFor('75/25 split', async () => JSON.stringify(await rates()) === JSON.stringify({ review: 75, 'review-canary': 25 }), { timeoutMs: 10_000 });
    const canary = (await plan()).flows.find((f) => f.workload === 'review-canary')!;
    assert.deepEqual([canary.errorRate, canary.latencyMs], [0.3, 300]);
    await new Promise((r) => setTimeout(r, 1500));
    const text = await (await fetch(`http://${sim!.address}/metrics`)).text();
    assert.match(text, new RegExp(`istio_requests_total\\{reporter="destination",[^}]*destination_workload="review-canary",destination_workload_namespace="${ns}",destination_service="review\\.${ns}\\.svc\\.cluster\\.local"[^}]*response_code="503"`));
    assert.match(text, /istio_request_duration_milliseconds_bucket\{[^}]*destination_workload="review"[^}]*le="50"\} [1-9]/);
  });

  it('follows weight changes within a poll', async () => {
    await apply(vs(100, 0));
    await waitFor('100/0 split', async () => (await rates())['review'] === 100, { timeoutMs: 5_000 });
    await apply(vs(50, 50));
    await waitFor('50/50 split', async () => (await rates())['review-canary'] === 50, { timeoutMs: 5_000 });
  });

  it('stops exporting a workload whose pods are gone', async () => {
    await kubectl(['-n', ns, 'delete', 'deployment', 'review-canary', '--wait=true']);
    await waitFor('review-canary gone from /metrics', async () => !(await (await fetch(`http://${sim!.address}/metrics`)).text()).includes('destination_workload="review-canary"'), { timeoutMs: 30_000 });
  });
});
