/**
 * The informer against a scripted fake API server (a test double over plain HTTP): a failing
 * list, a stream the server closes, a 410 "too old" ERROR event, and a watch that goes silent.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { V1Deployment } from '@kubernetes/client-node';
import { specCredentials } from '../../src/kube/credentials.js';
import { KubeHttp } from '../../src/kube/http.js';
import { Informer } from '../../src/kube/informer.js';
import { createLogger } from '../../src/kube/logger.js';

const dep = (name: string, rv: string): V1Deployment => ({ metadata: { name, namespace: 'ns', resourceVersion: rv } });

describe('kube informer', function () {
  this.timeout(15_000);
  let server: http.Server;
  let port: number;
  let lists = 0;
  let watches = 0;
  const watchQueries: string[] = [];
  let listItems: V1Deployment[] = [];
  const open: http.ServerResponse[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (url.searchParams.get('watch') !== 'true') {
        lists += 1;
        // The first list fails: the informer must back off and retry.
        if (lists === 1) return void res.writeHead(500).end('{"message":"etcd is sad"}');
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ items: listItems, metadata: { resourceVersion: String(10 * lists) } }));
      }
      watches += 1;
      watchQueries.push(url.searchParams.get('resourceVersion') ?? '');
      res.writeHead(200, { 'content-type': 'application/json' });
      const send = (type: string, object: unknown) => res.write(`${JSON.stringify({ type, object })}\n`);
      if (watches === 1) {
        send('ADDED', dep('b', '21'));
        res.end(); // the server closes the stream: watch again from rv 21, no relist
      } else if (watches === 2) {
        send('ERROR', { kind: 'Status', code: 410, message: 'too old resource version' });
        open.push(res);
      } else if (watches === 3) {
        open.push(res); // silent: the watchdog must restart it
      } else {
        send('MODIFIED', dep('a', '99'));
        open.push(res);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    for (const r of open) r.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('survives a failed list, a closed stream, 410 Gone and a silent watch, without losing changes', async () => {
    listItems = [dep('a', '5')];
    const kc = specCredentials({ server: `http://127.0.0.1:${port}` }, 'test');
    const seen: string[] = [];
    const inf = new Informer<V1Deployment>(new KubeHttp(kc), { name: 'test', path: '/apis/apps/v1/deployments', silenceMs: 400, backoffMinMs: 50, backoffMaxMs: 200 }, createLogger('test', 'silent'));
    inf.on((ev, o) => seen.push(`${ev} ${o.metadata!.name}@${o.metadata!.resourceVersion}`));
    inf.start();
    await inf.waitForSync();
    const deadline = Date.now() + 10_000;
    while (!seen.includes('update a@99') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await inf.stop();
    assert.deepEqual(seen.slice(0, 2), ['add a@5', 'add b@21']);
    assert.ok(seen.includes('delete b@21'), `the relist after 410 reports b as deleted: ${seen.join(', ')}`);
    assert.ok(seen.includes('update a@99'), seen.join(', '));
    assert.equal(lists, 3, 'failed list, first list, relist after 410');
    assert.equal(watchQueries[1], '21', 'after a normal close it resumes from the last resourceVersion');
    assert.ok(inf.stats.silentRestarts >= 1, 'the silent watch was restarted');
    assert.equal(inf.get('ns', 'a')?.metadata?.resourceVersion, '99');
  });
});

describe('kube informer: a version primed from our own write', function () {
  this.timeout(15_000);
  let server: http.Server;
  let watch: http.ServerResponse | undefined;

  before(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      res.writeHead(200, { 'content-type': 'application/json' });
      if (url.searchParams.get('watch') !== 'true') return void res.end(JSON.stringify({ items: [dep('a', '5')], metadata: { resourceVersion: '5' } }));
      watch = res;
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });

  after(async () => {
    watch?.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('is not overwritten by an older version the watch delivers late; newer ones replace it', async () => {
    const port = (server.address() as AddressInfo).port;
    const inf = new Informer<V1Deployment>(new KubeHttp(specCredentials({ server: `http://127.0.0.1:${port}` }, 'test')), { name: 'test', path: '/apis/apps/v1/deployments' }, createLogger('test', 'silent'));
    const seen: string[] = [];
    inf.on((ev, o) => seen.push(`${ev} ${o.metadata!.resourceVersion}`));
    inf.start();
    await inf.waitForSync();
    const until = async (cond: () => boolean) => {
      for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(cond());
    };
    await until(() => watch !== undefined);

    inf.prime(dep('a', '10')); // the answer of our PATCH
    inf.prime(dep('a', '7')); // an older answer arriving later changes nothing either
    assert.equal(inf.get('ns', 'a')?.metadata?.resourceVersion, '10');
    watch!.write(`${JSON.stringify({ type: 'MODIFIED', object: dep('a', '9') })}\n`); // a write before ours, delivered after our answer
    watch!.write(`${JSON.stringify({ type: 'MODIFIED', object: dep('a', '11') })}\n`);
    await until(() => seen.length > 1);
    assert.equal(inf.get('ns', 'a')?.metadata?.resourceVersion, '11');
    assert.deepEqual(seen, ['add 5', 'update 11'], 'the stale version is neither stored nor handed to the handlers');
    await inf.stop();
  });
});

describe('kube informer: a list of many objects', function () {
  this.timeout(15_000);
  let server: http.Server;
  const queries: URLSearchParams[] = [];
  let all: V1Deployment[] = [];
  /** Fail the request for this page number once (a continue token that expired: 410). */
  let expireAtPage = -1;
  let watch: http.ServerResponse | undefined;

  before(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (url.searchParams.get('watch') === 'true') return void (watch = res.writeHead(200, { 'content-type': 'application/json' }));
      queries.push(url.searchParams);
      // As the apiserver pages a list: `limit` objects, a continue token while more remain.
      const limit = Number(url.searchParams.get('limit') ?? all.length);
      const from = Number(url.searchParams.get('continue') ?? 0);
      if (from > 0 && from / limit === expireAtPage) {
        expireAtPage = -1;
        return void res.writeHead(410, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 410, message: 'The provided continue parameter is too old' }));
      }
      const next = from + limit < all.length ? String(from + limit) : undefined;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items: all.slice(from, from + limit), metadata: { resourceVersion: '77', ...(next ? { continue: next } : {}) } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });

  after(async () => {
    watch?.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('is read in pages of 500 (one request each), and a page failing half-way leaves nothing half-applied: listed again from the start', async () => {
    all = Array.from({ length: 1234 }, (_, i) => dep(`d${i}`, String(i + 1)));
    expireAtPage = 2;
    const port = (server.address() as AddressInfo).port;
    const inf = new Informer<V1Deployment>(new KubeHttp(specCredentials({ server: `http://127.0.0.1:${port}` }, 'test')), { name: 'test', path: '/apis/apps/v1/deployments', backoffMinMs: 20, backoffMaxMs: 50 }, createLogger('test', 'silent'));
    let adds = 0;
    inf.on((ev) => ev === 'add' && (adds += 1));
    inf.start();
    await inf.waitForSync();
    for (let i = 0; i < 200 && watch === undefined; i++) await new Promise((r) => setTimeout(r, 10));
    await inf.stop();
    assert.equal(inf.list().length, 1234);
    assert.equal(adds, 1234, 'each object added once: the failed attempt applied nothing');
    assert.deepEqual(queries.map((q) => [q.get('limit'), q.get('continue')]), [
      ['500', null], ['500', '500'], ['500', '1000'], // the third page: 410, continue token expired
      ['500', null], ['500', '500'], ['500', '1000'],
    ]);
    assert.equal(inf.stats.lists, 2);
  });
});

describe('kube informer: a list that cannot work (resource not served, access forbidden)', function () {
  this.timeout(15_000);
  let server: http.Server;
  /** What the list answers: a status code, or 200 with no items. */
  let answer = 404;
  let lists = 0;

  before(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (url.searchParams.get('watch') === 'true') return void res.writeHead(200, { 'content-type': 'application/json' }).flushHeaders();
      lists += 1;
      if (answer === 404) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found\n');
      if (answer === 403) return void res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 403, reason: 'Forbidden', message: 'things is forbidden: User "x" cannot list resource "things"' }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items: [], metadata: { resourceVersion: '1' } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('settles at once, says so once at warn (each new reason once), keeps retrying, and recovers', async () => {
    const port = (server.address() as AddressInfo).port;
    const lines: Array<{ level: number; msg: string }> = [];
    const log = createLogger('test', 'debug', { write: (l: string) => void lines.push(JSON.parse(l)) });
    const inf = new Informer<V1Deployment>(new KubeHttp(specCredentials({ server: `http://127.0.0.1:${port}` }, 'test')), { name: 'things(ns)', path: '/apis/x.example/v1/namespaces/ns/things', customResource: true, backoffMinMs: 20, backoffMaxMs: 150 }, log);
    const until = async (cond: () => boolean) => {
      for (let i = 0; i < 300 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(cond());
    };
    inf.start();
    const started = Date.now();
    await inf.waitUntilSettled();
    assert.ok(Date.now() - started < 1000, 'settled by the first failed list, not by a timeout');
    assert.equal(inf.hasSynced, false);
    assert.equal(inf.lastingFailure?.code, 404);
    await until(() => lists >= 4);
    answer = 403;
    await until(() => inf.lastingFailure?.code === 403 && lists >= 7);
    const warns = lines.filter((l) => l.level === 40);
    assert.deepEqual(warns.map((l) => l.msg), [
      'cannot list: the API server does not serve this resource (is its CustomResourceDefinition installed?); retrying',
      'cannot list: access is forbidden (RBAC); retrying',
    ]);
    assert.ok(lines.some((l) => l.level === 20 && l.msg.startsWith('cannot list: the API server does not serve')), 'repeats go to debug');
    answer = 200;
    await inf.waitForSync();
    assert.equal(inf.lastingFailure, undefined);
    assert.ok(lines.some((l) => l.msg === 'listing works again'));
    await inf.stop();
  });
});

describe('kube informer: stopped while its list is in flight', function () {
  this.timeout(15_000);
  let server: http.Server;
  let watches = 0;
  let listArrived: () => void;
  const listing = new Promise<void>((r) => (listArrived = r));
  let answerList: () => void;

  before(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (url.searchParams.get('watch') === 'true') {
        watches += 1;
        return void res.writeHead(200, { 'content-type': 'application/json' }).flushHeaders();
      }
      answerList = () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items: [dep('a', '1')], metadata: { resourceVersion: '1' } }));
      listArrived();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('starts no watch after the list answers, so stop() returns at once', async () => {
    const port = (server.address() as AddressInfo).port;
    const inf = new Informer<V1Deployment>(new KubeHttp(specCredentials({ server: `http://127.0.0.1:${port}` }, 'test')), { name: 'test', path: '/apis/apps/v1/deployments' }, createLogger('test', 'silent'));
    const seen: string[] = [];
    inf.on((ev, o) => seen.push(`${ev} ${o.metadata!.name}`));
    inf.start();
    await listing;
    const stopped = inf.stop();
    answerList();
    const started = Date.now();
    const outcome = await Promise.race([stopped.then(() => 'stopped'), new Promise((r) => setTimeout(() => r('still waiting'), 3000))]);
    assert.equal(outcome, 'stopped', 'stop() waited for a watch started after it');
    assert.ok(Date.now() - started < 200, `stop() took ${Date.now() - started} ms`);
    assert.equal(watches, 0);
    assert.deepEqual(seen, [], 'the list that answered after stop() is not applied: whoever stopped it has cleaned up');
    assert.deepEqual(inf.list(), []);
  });
});

describe('kube informer: a watch that fails at once, every time', function () {
  this.timeout(15_000);
  let server: http.Server;
  let watches = 0;
  let lists = 0;
  let watchStatus = 500;

  before(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (url.searchParams.get('watch') !== 'true') {
        lists += 1;
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items: [], metadata: { resourceVersion: '1' } }));
      }
      watches += 1;
      // 403: allowed to list but not to watch (a Role with get and list only).
      if (watchStatus === 403) return void res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 403, reason: 'Forbidden', message: 'deployments.apps is forbidden: User "x" cannot watch resource "deployments"' }));
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 500, message: 'etcd is sad' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  for (const status of [500, 403]) it(`backs off further with every failure (${status}) instead of retrying at the shortest pace, and is not reported as a refused list`, async () => {
    watchStatus = status;
    watches = 0;
    lists = 0;
    const port = (server.address() as AddressInfo).port;
    const lines: Array<{ level: number; msg: string }> = [];
    const log = createLogger('test', 'debug', { write: (l: string) => void lines.push(JSON.parse(l)) });
    const inf = new Informer<V1Deployment>(new KubeHttp(specCredentials({ server: `http://127.0.0.1:${port}` }, 'test')), { name: 'test', path: '/apis/apps/v1/deployments', backoffMinMs: 50, backoffMaxMs: 400 }, log);
    inf.start();
    await inf.waitForSync();
    await new Promise((r) => setTimeout(r, 1500));
    await inf.stop();
    // 50, 100, 200, 400, 400 ms (+-20 %): about 5 in 1.5 s; at the shortest pace it would be some 25.
    assert.ok(watches >= 3 && watches <= 8, `${watches} watch attempts in 1.5 s`);
    assert.equal(lists, 1, 'a failing watch does not list again');
    assert.equal(inf.lastingFailure, undefined, 'the list works: nothing lasting to report');
    assert.ok(lines.every((l) => !l.msg.startsWith('cannot list')));
    assert.ok(lines.some((l) => l.level === 40 && l.msg === 'watch failed; retrying'));
  });
});
