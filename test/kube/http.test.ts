import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ApiCredentials, specCredentials } from '../../src/kube/credentials.js';
import { KubeHttp, resourceOf } from '../../src/kube/http.js';

describe('kube http: request slots by priority', function () {
  this.timeout(10_000);
  let server: http.Server;
  let kc: ApiCredentials;
  const arrived: string[] = [];
  const held: http.ServerResponse[] = [];

  before(async () => {
    // Holds every request until the test answers it, recording the order they reached the server.
    server = http.createServer((req, res) => {
      arrived.push(new URL(req.url!, 'http://x').pathname); // the order is what counts here, not the query (fieldManager on writes)
      held.push(res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    kc = specCredentials({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }, 'test');
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const answerOne = async () => {
    await waitUntil(() => held.length > 0);
    held.shift()!.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  };

  it('with every slot taken, waiting requests go out high first, then normal, then low, FIFO within each', async () => {
    const api = new KubeHttp(kc, { maxInFlight: 1 });
    const all = [api.request('GET', '/first')];
    await waitUntil(() => arrived.length === 1);
    all.push(api.request('POST', '/event-1', { body: {}, priority: 'low' }));
    all.push(api.request('PATCH', '/status-1', { body: [], priority: 'normal' }));
    all.push(api.request('PATCH', '/weight-1', { body: [], priority: 'high' }));
    all.push(api.request('POST', '/event-2', { body: {}, priority: 'low' }));
    all.push(api.request('PATCH', '/weight-2', { body: [], priority: 'high' }));
    all.push(api.request('GET', '/status-2'));
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(arrived, ['/first'], 'only one request in flight');
    for (let i = 0; i < 7; i++) await answerOne();
    await Promise.all(all);
    assert.deepEqual(arrived, ['/first', '/weight-1', '/weight-2', '/status-1', '/status-2', '/event-1', '/event-2']);
  });

  it('normal and low requests leave the last quarter of the slots to high ones', async () => {
    arrived.length = 0;
    held.length = 0;
    const api = new KubeHttp(kc, { maxInFlight: 8 }); // normal and low: at most 6 in flight
    const all = Array.from({ length: 8 }, (_, i) => api.request('PATCH', `/status-${i}`, { body: [] }));
    await waitUntil(() => arrived.length === 6);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(arrived.length, 6, 'two slots stay free for traffic weights');
    all.push(api.request('PATCH', '/weight-0', { body: [], priority: 'high' }), api.request('PATCH', '/weight-1', { body: [], priority: 'high' }), api.request('PATCH', '/weight-2', { body: [], priority: 'high' }));
    await waitUntil(() => arrived.length === 8);
    assert.deepEqual(arrived.slice(6), ['/weight-0', '/weight-1'], 'the weights go out at once');
    // A status write finishes: its slot goes to the waiting weight, not to a waiting status write.
    await answerOne();
    await waitUntil(() => arrived.length === 9);
    assert.deepEqual(arrived.slice(8), ['/weight-2']);
    await answerOne();
    await waitUntil(() => arrived.length === 10);
    assert.deepEqual(arrived.slice(9), ['/status-6']);
    for (let i = 0; i < 9; i++) await answerOne();
    await Promise.all(all);
    assert.deepEqual(arrived.slice(10), ['/status-7']);
  });

  it('a failed request gives its slot back', async () => {
    arrived.length = 0;
    const api = new KubeHttp(kc, { maxInFlight: 1 });
    const first = api.request('GET', '/fails');
    const second = api.request('GET', '/after');
    await waitUntil(() => held.length === 1);
    held.shift()!.writeHead(500, { 'content-type': 'application/json' }).end('{"message":"boom"}');
    await assert.rejects(first, /boom/);
    await answerOne();
    assert.deepEqual(await second, {});
    assert.deepEqual(arrived, ['/fails', '/after']);
  });
});

describe('kube http: watches and the deadline of a request', function () {
  this.timeout(10_000);
  let server: http.Server;
  let kc: ApiCredentials;
  let watchesOpen = 0;
  const held: http.ServerResponse[] = [];

  before(async () => {
    // Watches get their headers and then nothing (an idle watch); /held is never answered by itself.
    server = http.createServer((req, res) => {
      if (req.url!.includes('watch=true')) {
        watchesOpen += 1;
        res.writeHead(200, { 'content-type': 'application/json' }).flushHeaders();
        return;
      }
      if (req.url === '/held') return void held.push(res);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"answered":true}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    kc = specCredentials({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }, 'test');
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<string>((r) => setTimeout(() => r(`nothing after ${ms} ms`), ms).unref())]);

  it('a request answers at once while more watches are open than requests have sockets', async () => {
    const api = new KubeHttp(kc, { maxInFlight: 4 });
    const stops = Array.from({ length: 40 }, (_, i) => {
      const ctrl = new AbortController();
      api.watch(`/apis/apps/v1/namespaces/ns-${i}/deployments`, {}, () => {}, ctrl.signal).catch(() => {});
      return ctrl;
    });
    try {
      for (let i = 0; i < 100 && watchesOpen < 40; i++) await new Promise((r) => setTimeout(r, 10));
      const started = Date.now();
      assert.deepEqual(await within(api.request('GET', '/apis/coordination.k8s.io/v1/namespaces/kube-canary/leases/progressor', { timeoutMs: 4000 }), 2000), { answered: true });
      assert.ok(Date.now() - started < 1000, `answered after ${Date.now() - started} ms`);
      assert.equal(watchesOpen, 40, 'every watch has its own connection');
    } finally {
      for (const s of stops) s.abort();
    }
  });

  it('a request still waiting for a slot at its deadline fails, saying what it waited for, and leaves the queue', async () => {
    const api = new KubeHttp(kc, { maxInFlight: 1 });
    const first = api.request('GET', '/held');
    await waitUntil(() => held.length === 1);
    const started = Date.now();
    const late = await within(api.request('GET', '/lease', { timeoutMs: 200, priority: 'high' }).catch((e: Error) => e), 2000);
    assert.ok(late instanceof Error, String(late));
    assert.equal(late.message, 'GET /lease: no answer within 200 ms: still waiting for one of the 1 request slots (1 in use)');
    assert.ok(Date.now() - started < 1000, `failed after ${Date.now() - started} ms`);
    held.shift()!.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    assert.deepEqual(await first, {});
    // The slot the late request gave up went to nobody: the next request gets it.
    assert.deepEqual(await within(api.request('GET', '/next'), 2000), { answered: true });
  });
});

describe('kube http: who the progressor is to the API server', () => {
  let server: http.Server;
  const seen: Array<{ method: string; fieldManager: string | null; userAgent?: string; watch: boolean }> = [];

  before(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      seen.push({ method: req.method!, fieldManager: url.searchParams.get('fieldManager'), ...(req.headers['user-agent'] ? { userAgent: req.headers['user-agent'] } : {}), watch: url.searchParams.get('watch') === 'true' });
      res.writeHead(200, { 'content-type': 'application/json' }).end(url.searchParams.get('watch') === 'true' ? '' : '{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('every write names kube-canary-progressor as its field manager, and every request and watch says so in its User-Agent', async () => {
    const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    const api = new KubeHttp(specCredentials({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }, 'test'));
    const path = '/apis/apps/v1/namespaces/test/deployments';
    await api.request('GET', `${path}/review`);
    await api.request('POST', path, { body: {} });
    await api.request('PUT', `${path}/review`, { body: {} });
    await api.request('PATCH', `${path}/review`, { body: [], contentType: 'application/json-patch+json', query: { dryRun: 'All' } });
    await api.request('DELETE', `${path}/review-canary`, { body: {} });
    await api.watch(path, {}, () => {}, new AbortController().signal);
    const ua = `kube-canary-progressor/${version}`;
    assert.deepEqual(seen, [
      { method: 'GET', fieldManager: null, userAgent: ua, watch: false },
      { method: 'POST', fieldManager: 'kube-canary-progressor', userAgent: ua, watch: false },
      { method: 'PUT', fieldManager: 'kube-canary-progressor', userAgent: ua, watch: false },
      { method: 'PATCH', fieldManager: 'kube-canary-progressor', userAgent: ua, watch: false },
      { method: 'DELETE', fieldManager: null, userAgent: ua, watch: false },
      { method: 'GET', fieldManager: null, userAgent: ua, watch: true },
    ]);
  });
});

async function waitUntil(f: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !f(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(f(), 'condition not reached');
}

describe('kube http: resourceOf (requests counted by resource)', () => {
  it('names the resource of core, group, namespaced, cluster-scoped and named paths', () => {
    assert.equal(resourceOf('/api/v1/namespaces/test/events'), 'events');
    assert.equal(resourceOf('/api/v1/namespaces'), 'namespaces');
    assert.equal(resourceOf('/api/v1/namespaces/test'), 'namespaces');
    assert.equal(resourceOf('/apis/apps/v1/namespaces/test/deployments/review'), 'deployments');
    assert.equal(resourceOf('/apis/apps/v1/deployments'), 'deployments');
    assert.equal(resourceOf('/apis/networking.istio.io/v1/namespaces/test/virtualservices/review?x=1'), 'virtualservices');
    assert.equal(resourceOf('/apis/coordination.k8s.io/v1/namespaces/kube-canary/leases/progressor'), 'leases');
  });
});
