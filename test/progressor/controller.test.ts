/**
 * The controller's start against an API stand-in over HTTP (lists and watches as the apiserver
 * serves them): no release is reconciled before every cache has listed once.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { V1Deployment } from '@kubernetes/client-node';
import { Kube } from '../../src/kube/client.js';
import { specCredentials } from '../../src/kube/credentials.js';
import { KubeHttp } from '../../src/kube/http.js';
import { createLogger } from '../../src/kube/logger.js';
import { Controller } from '../../src/progressor/controller.js';
import { ProgressorMetrics } from '../../src/progressor/metrics.js';
import type { Reconciler } from '../../src/progressor/reconciler.js';

const deployment = (name: string, labels: Record<string, string>, annotations: Record<string, string> = {}): V1Deployment => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace: 'test', uid: `uid-${name}`, resourceVersion: '5', labels, annotations },
  spec: { selector: { matchLabels: { app: 'review' } }, template: { metadata: { labels: { app: 'review' } }, spec: { containers: [{ name: 'review', image: 'review:1.8.0' }] } } },
});

describe('progressor controller start', function () {
  this.timeout(20_000);
  let server: http.Server;
  let port: number;
  const open = new Set<http.ServerResponse>();

  before(async () => {
    const stable = deployment('review', { 'kube-canary.io/enabled': 'true' }, { 'kube-canary.io/revision': 'new1', 'kube-canary.io/stable-revision': 'old0' });
    const canary = deployment('review-canary', { 'kube-canary.io/role': 'canary', 'kube-canary.io/stable': 'review' });
    server = http.createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (url.searchParams.get('watch')) {
        // A watch that stays open and quiet, as an idle one does.
        res.writeHead(200, { 'content-type': 'application/json' });
        open.add(res);
        return;
      }
      const selector = url.searchParams.get('labelSelector') ?? '';
      const list = (items: object[]) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ metadata: { resourceVersion: '5' }, items }));
      if (url.pathname === '/api/v1/namespaces') return list([]);
      if (selector.startsWith('kube-canary.io/role=canary')) return void setTimeout(() => list([canary]), 400); // the slowest list
      if (selector.startsWith('kube-canary.io/enabled=true')) return list([stable]);
      res.writeHead(404).end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    for (const r of open) r.end();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('reconciles a release only once the canary cache has listed (else it would see its canary as deleted)', async () => {
    const seen: Array<string | undefined> = [];
    let controller!: Controller;
    const fake = {
      reconcile: async (d: V1Deployment) => {
        seen.push(controller.canaryOf('test', d.metadata!.name!)?.metadata?.name);
        return {};
      },
      forget: () => {},
    } as unknown as Reconciler;
    controller = new Controller({
      kube: new Kube(new KubeHttp(specCredentials({ server: `http://127.0.0.1:${port}`, token: 't' }, 'test'))),
      reconciler: () => fake,
      log: createLogger('test', 'silent'),
      metrics: new ProgressorMetrics(false),
    });
    try {
      await controller.start();
      const t0 = Date.now();
      while (seen.length === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
      assert.ok(seen.length > 0, 'reconciled');
      assert.deepEqual([...new Set(seen)], ['review-canary'], 'every reconcile saw the canary');
    } finally {
      await controller.stop();
    }
  });
});

describe('progressor controller: a list the API refuses (RBAC not there yet)', function () {
  this.timeout(20_000);
  let server: http.Server;
  let forbidden = true;
  const open = new Set<http.ServerResponse>();

  before(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (url.searchParams.get('watch')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        open.add(res);
        return;
      }
      if (forbidden && url.pathname === '/apis/apps/v1/deployments') {
        return void res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 403, reason: 'Forbidden', message: 'deployments.apps is forbidden: User "system:serviceaccount:kube-canary:progressor" cannot list resource "deployments" in API group "apps" at the cluster scope' }));
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ metadata: { resourceVersion: '5' }, items: [] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });

  after(async () => {
    for (const r of open) r.end();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('says why it is not ready (readyz detail), and starts soon after the permission is granted', async () => {
    const controller = new Controller({
      kube: new Kube(new KubeHttp(specCredentials({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: 't' }, 'test'))),
      reconciler: () => ({ reconcile: async () => ({}), forget: () => {} }) as unknown as Reconciler,
      log: createLogger('test', 'silent'),
      metrics: new ProgressorMetrics(false),
    });
    let started = false;
    const starting = controller.start().then(() => (started = true));
    try {
      const t0 = Date.now();
      while (!controller.healthy().detail.includes('refused') && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
      const h = controller.healthy();
      assert.equal(h.ok, false);
      assert.match(h.detail, /^informers syncing \(a list is refused: GET \/apis\/apps\/v1\/deployments: deployments\.apps is forbidden: User "system:serviceaccount:kube-canary:progressor" cannot list/);
      assert.equal(started, false);
      // A RoleBinding applied a moment later: picked up within the first steps of the backoff, not after its slowest retry (30 s).
      await new Promise((r) => setTimeout(r, 1500));
      forbidden = false;
      const granted = Date.now();
      await starting;
      assert.ok(Date.now() - granted < 6000, `started ${Date.now() - granted} ms after the permission was granted`);
      assert.equal(controller.healthy().ok, true);
    } finally {
      await controller.stop();
    }
  });
});
