/**
 * Routing objects of a resource the cluster does not serve (Istio's CRDs not installed), against
 * the real kube-apiserver: the read fails at once with a message that says what to install, and
 * the namespace's watch says so once instead of every retry.
 */
import assert from 'node:assert/strict';
import { loadCredentials } from '../../src/kube/credentials.js';
import { type Gvr, KubeCustomObjects } from '../../src/kube/custom-objects.js';
import { KubeHttp } from '../../src/kube/http.js';
import { createLogger } from '../../src/kube/logger.js';
import { InformerObjectCache } from '../../src/kube/object-cache.js';
import { clusterEnv } from './harness/cluster.js';

const UNSERVED: Gvr = { group: 'unserved.kube-canary.example', version: 'v1', plural: 'routes', servedBy: 'the example mesh' };

describe('a routing resource the cluster does not serve (real API server)', function () {
  this.timeout(30_000);

  it('reads fail at once, saying what to install; the watch warns once', async () => {
    const api = new KubeHttp(await loadCredentials(clusterEnv().kubeconfig, {}));
    await assert.rejects(new KubeCustomObjects(api).list(UNSERVED, 'default'), {
      code: 404,
      message: 'the API server does not serve routes.unserved.kube-canary.example/v1: install its CustomResourceDefinition (the example mesh)',
    });

    const lines: Array<{ level: number; msg: string }> = [];
    const cache = new InformerObjectCache(api, createLogger('test', 'info', { write: (l: string) => void lines.push(JSON.parse(l)) }));
    try {
      const started = Date.now();
      assert.equal(await cache.list(UNSERVED, 'default'), undefined, 'not synced: the caller reads the API (and gets the message above)');
      assert.ok(Date.now() - started < 1000, `waited ${Date.now() - started} ms for a list that cannot work`);
      assert.equal(await cache.list(UNSERVED, 'default'), undefined);
      await new Promise((r) => setTimeout(r, 2000));
      assert.deepEqual(
        lines.filter((l) => l.level >= 40).map((l) => l.msg),
        ['cannot list: the API server does not serve this resource (is its CustomResourceDefinition installed?); retrying'],
      );
    } finally {
      await cache.stop();
    }
  });
});
