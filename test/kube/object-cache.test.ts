/**
 * The routing-object cache against a stand-in API server on 127.0.0.1: a namespace's watch
 * stops once nothing reads it, and starts again when something does.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { specCredentials } from '../../src/kube/credentials.js';
import type { Gvr } from '../../src/kube/custom-objects.js';
import { KubeHttp } from '../../src/kube/http.js';
import { createLogger } from '../../src/kube/logger.js';
import { InformerObjectCache } from '../../src/kube/object-cache.js';

const VS: Gvr = { group: 'networking.istio.io', version: 'v1', plural: 'virtualservices' };

describe('kube object cache: per-namespace watches', function () {
  this.timeout(10_000);
  let server: http.Server;
  const lists: string[] = [];
  /** Watches the server holds open, per namespace. */
  const open = new Map<string, number>();

  before(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      const ns = url.pathname.split('/')[5]!;
      res.writeHead(200, { 'content-type': 'application/json' });
      if (url.searchParams.get('watch') !== 'true') {
        lists.push(ns);
        return void res.end(JSON.stringify({ items: [{ metadata: { name: `vs-${ns}`, namespace: ns, resourceVersion: '1' } }], metadata: { resourceVersion: '1' } }));
      }
      res.flushHeaders();
      open.set(ns, (open.get(ns) ?? 0) + 1);
      req.on('close', () => open.set(ns, open.get(ns)! - 1));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('stops the watch of a namespace nobody reads any more, keeps the ones in use, and starts it again on the next read', async () => {
    const api = new KubeHttp(specCredentials({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }, 'test'));
    const cache = new InformerObjectCache(api, createLogger('test', 'silent'), { idleMs: 300 });
    try {
      const names = async (ns: string) => (await cache.list(VS, ns))?.map((o) => o.metadata.name);
      assert.deepEqual(await names('done'), ['vs-done']);
      assert.deepEqual(await names('active'), ['vs-active']);
      await until(() => open.get('done') === 1 && open.get('active') === 1);
      // 'active' is read as a release's steps read it; 'done' no longer.
      for (let i = 0; i < 20 && open.get('done') !== 0; i++) {
        assert.deepEqual(await names('active'), ['vs-active']);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(open.get('done'), 0, 'the unread watch was stopped');
      assert.equal(open.get('active'), 1, 'the watch in use goes on');
      assert.deepEqual(await names('done'), ['vs-done'], 'a new release there reads it again');
      await until(() => open.get('done') === 1);
      assert.deepEqual(lists, ['done', 'active', 'done']);
    } finally {
      await cache.stop();
    }
    await until(() => open.get('done') === 0 && open.get('active') === 0);
  });
});

async function until(f: () => boolean): Promise<void> {
  for (let i = 0; i < 300 && !f(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(f(), 'condition not reached');
}
