import assert from 'node:assert/strict';
import fjp, { type Operation } from 'fast-json-patch';
import { parse as parseYaml } from 'yaml';
import type { ApiObject, CustomObjectClient, Gvr } from '../../src/kube/custom-objects.js';
import { IstioProvider, VIRTUAL_SERVICES, hostMatches, readWeights, subsetPatch, weightPatch } from '../../src/traffic/istio.js';
import type { RouteTarget } from '../../src/traffic/provider.js';

const target: RouteTarget = {
  namespace: 'test',
  name: 'review',
  service: 'review',
  trackLabel: 'version',
  owner: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'review', uid: 'uid-1', controller: false, blockOwnerDeletion: true },
};

// The user's own VirtualService, with fields we must never touch (match, retries, timeout, headers).
const userVs = (): ApiObject =>
  parseYaml(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: review-virtualservice
  namespace: test
  annotations: {team: reviews}
spec:
  hosts: [review, review.example.com]
  gateways: [public-gateway]
  http:
  - name: api
    match: [{uri: {prefix: /review/}}]
    retries: {attempts: 3, perTryTimeout: 2s}
    timeout: 10s
    route:
    - destination: {host: review, subset: stable, port: {number: 80}}
      weight: 80
      headers: {response: {set: {x-track: stable}}}
    - destination: {host: review, subset: canary, port: {number: 80}}
      weight: 20
  - name: other
    route:
    - destination: {host: ratings}
`) as ApiObject;

/** In-memory test double of the custom-objects client: applies JSON patches and counts resourceVersions like the API server. */
class FakeCustomObjects implements CustomObjectClient {
  objects = new Map<string, ApiObject>();
  private version = 0;
  patches: Array<{ name: string; ops: Operation[] }> = [];
  creates: ApiObject[] = [];
  key = (g: Gvr, ns: string, name: string) => `${g.plural}/${ns}/${name}`;
  async list(g: Gvr, ns: string) {
    this.lists += 1;
    return [...this.objects.entries()].filter(([k]) => k.startsWith(`${g.plural}/${ns}/`)).map(([, v]) => structuredClone(v));
  }
  gets = 0;
  lists = 0;
  async get(g: Gvr, ns: string, name: string) {
    this.gets += 1;
    const o = this.objects.get(this.key(g, ns, name));
    if (!o) throw Object.assign(new Error('not found'), { code: 404 });
    return structuredClone(o);
  }
  async create(g: Gvr, ns: string, body: ApiObject) {
    const k = this.key(g, ns, body.metadata.name);
    if (this.objects.has(k)) throw Object.assign(new Error('exists'), { code: 409 });
    this.creates.push(body);
    const created = structuredClone(body);
    created.metadata.resourceVersion = String(++this.version);
    this.objects.set(k, created);
    return structuredClone(created);
  }
  /** Test double of the watch-backed cache: serves the fake's current objects. */
  watchCache(remember: (o: ApiObject) => void = () => undefined) {
    return { list: async (g: Gvr, ns: string) => [...this.objects.entries()].filter(([k]) => k.startsWith(`${g.plural}/${ns}/`)).map(([, v]) => structuredClone(v)), remember: (_g: Gvr, _ns: string, o: ApiObject) => remember(o) };
  }
  async jsonPatch(g: Gvr, ns: string, name: string, ops: Operation[]) {
    const k = this.key(g, ns, name);
    const cur = this.objects.get(k);
    if (!cur) throw Object.assign(new Error('not found'), { code: 404 });
    this.patches.push({ name, ops });
    let next: ApiObject;
    try {
      next = fjp.applyPatch(structuredClone(cur), ops, true, false).newDocument;
    } catch (err) {
      throw Object.assign(err as Error, { code: 422 });
    }
    next.metadata.resourceVersion = String(++this.version);
    this.objects.set(k, next);
    return structuredClone(next);
  }
}

describe('istio provider', () => {
  it('matches the Service host in its short and long forms only', () => {
    for (const h of ['review', 'review.test', 'review.test.svc', 'review.test.svc.cluster.local']) assert.ok(hostMatches(h, 'review', 'test'), h);
    for (const h of ['reviews', 'review.other', 'review.example.com', undefined]) assert.ok(!hostMatches(h, 'review', 'test'), String(h));
  });

  it("changes only the two weights of a user's VirtualService; everything else stays byte-for-byte the same", () => {
    const before = userVs();
    const ops = weightPatch(before, target, 75, 25);
    assert.deepEqual(ops.filter((o) => o.op !== 'test').map((o) => o.path), ['/spec/http/0/route/0/weight', '/spec/http/0/route/1/weight']);
    const after = fjp.applyPatch(structuredClone(before), ops, true, false).newDocument as ApiObject;
    assert.equal(readWeights(after, target)!.canary, 25);
    // Put the old weights back: the result must serialise exactly like the original.
    const http = after.spec!.http as Array<{ route: Array<{ weight: number }> }>;
    http[0]!.route[0]!.weight = 80;
    http[0]!.route[1]!.weight = 20;
    assert.equal(JSON.stringify(after), JSON.stringify(before));
  });

  it('sends no patch when the weights are already right', () => {
    assert.deepEqual(weightPatch(userVs(), target, 80, 20), []);
  });

  it('adds a missing canary destination instead of rewriting the route', () => {
    const vs = userVs();
    const rule = (vs.spec!.http as Array<{ match?: unknown; route: unknown[] }>)[0]!;
    // The host's general traffic: a match route without a canary destination is not weighted (see below).
    delete rule.match;
    const route = rule.route;
    route.pop();
    delete (route[0] as { weight?: number }).weight;
    assert.deepEqual(readWeights(vs, target), { stable: 100, canary: 0 });
    const after = fjp.applyPatch(structuredClone(vs), weightPatch(vs, target, 90, 10), true, false).newDocument as ApiObject;
    assert.deepEqual(readWeights(after, target), { stable: 90, canary: 10 });
    assert.deepEqual((after.spec!.http as Array<{ route: unknown[] }>)[0]!.route[1], { destination: { host: 'review', subset: 'canary' }, weight: 10 });
  });

  it('the weight patch fails (test op) if the route entries moved since they were read', () => {
    const vs = userVs();
    const ops = weightPatch(vs, target, 50, 50);
    const moved = userVs();
    (moved.spec!.http as Array<{ route: unknown[] }>)[0]!.route.reverse();
    assert.throws(() => fjp.applyPatch(moved, ops, true, false));
  });

  it('adds missing subsets to a user DestinationRule and leaves the rest alone', () => {
    const dr: ApiObject = { metadata: { name: 'review-destinationrule' }, spec: { host: 'review', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } }, subsets: [{ name: 'stable', labels: { version: 'stable' } }] } };
    const ops = subsetPatch(dr, target);
    assert.deepEqual(ops, [{ op: 'add', path: '/spec/subsets/-', value: { name: 'canary', labels: { version: 'canary' } } }]);
    assert.deepEqual(subsetPatch(fjp.applyPatch(structuredClone(dr), ops).newDocument as ApiObject, target), []);
  });

  it("sends the missing subsets of a user's DestinationRule to the API, with or without a watch cache", async () => {
    for (const cached of [false, true]) {
      const fake = new FakeCustomObjects();
      fake.objects.set('virtualservices/test/review-virtualservice', userVs());
      fake.objects.set('destinationrules/test/review-destinationrule', { metadata: { name: 'review-destinationrule' }, spec: { host: 'review', subsets: [{ name: 'stable', labels: { version: 'stable' } }] } });
      const cache = fake.watchCache();
      await (cached ? new IstioProvider(fake, cache) : new IstioProvider(fake)).reconcile(target);
      assert.deepEqual((fake.objects.get('destinationrules/test/review-destinationrule')!.spec as { subsets: unknown[] }).subsets, [{ name: 'stable', labels: { version: 'stable' } }, { name: 'canary', labels: { version: 'canary' } }], cached ? 'with a watch cache' : 'without');
    }
  });

  it('generates a DestinationRule and VirtualService owned by the Deployment when absent, at 100/0', async () => {
    const fake = new FakeCustomObjects();
    const p = new IstioProvider(fake);
    assert.equal(await p.getRoutes(target), undefined);
    await p.reconcile(target);
    assert.deepEqual(fake.creates.map((c) => [c.kind, c.metadata.name, (c.metadata.ownerReferences as Array<{ uid: string }>)[0]!.uid]), [
      ['DestinationRule', 'review', 'uid-1'],
      ['VirtualService', 'review', 'uid-1'],
    ]);
    assert.deepEqual(await p.getRoutes(target), { stable: 100, canary: 0 });
    await p.setRoutes(target, 75, 25);
    assert.deepEqual(await p.getRoutes(target), { stable: 75, canary: 25 });
    await p.reconcile(target); // idempotent: nothing created twice, weights untouched
    assert.equal(fake.creates.length, 2);
    assert.deepEqual(await p.getRoutes(target), { stable: 75, canary: 25 });
  });

  it('a first step in one reconcile (getRoutes finds nothing, reconcile creates, setRoutes) sets the weight on the created VirtualService', async () => {
    for (const cached of [false, true]) {
      const fake = new FakeCustomObjects();
      const cache = fake.watchCache();
      const p = cached ? new IstioProvider(fake, cache) : new IstioProvider(fake);
      assert.equal(await p.getRoutes(target), undefined);
      await p.reconcile(target);
      // Not what getRoutes() read a moment ago (nothing): that predates the creation.
      await p.setRoutes(target, 90, 10);
      assert.deepEqual(await p.getRoutes(target), { stable: 90, canary: 10 }, cached ? 'with a watch cache' : 'without');
    }
  });

  it("uses the user's objects when present: no creation, weights patched in place", async () => {
    const fake = new FakeCustomObjects();
    fake.objects.set('virtualservices/test/review-virtualservice', userVs());
    fake.objects.set('destinationrules/test/review-destinationrule', { metadata: { name: 'review-destinationrule' }, spec: { host: 'review.test.svc.cluster.local', subsets: [{ name: 'stable', labels: { version: 'stable' } }, { name: 'canary', labels: { version: 'canary' } }] } });
    const p = new IstioProvider(fake);
    await p.reconcile(target);
    assert.equal(fake.creates.length, 0);
    assert.equal(fake.patches.length, 0);
    await p.setRoutes(target, 100, 0);
    assert.deepEqual(await p.getRoutes(target), { stable: 100, canary: 0 });
    assert.equal(fake.patches.length, 1);
  });

  it('reads known VirtualServices by name instead of listing the namespace, and relists when one goes', async () => {
    const fake = new FakeCustomObjects();
    fake.objects.set('virtualservices/test/review-virtualservice', userVs());
    const p = new IstioProvider(fake);
    await p.getRoutes(target);
    const lists = fake.lists;
    await p.getRoutes(target);
    assert.equal(fake.gets, 1, 'a known VirtualService is read by name');
    await p.setRoutes(target, 90, 10);
    assert.equal(fake.gets, 1, 'setRoutes right after getRoutes reuses what was just read');
    assert.equal(fake.lists, lists, 'no list once the name is known');
    assert.deepEqual(await p.getRoutes(target), { stable: 90, canary: 10 });
    fake.objects.delete('virtualservices/test/review-virtualservice');
    assert.equal(await p.getRoutes(target), undefined);
    assert.equal(fake.lists, lists + 1);
  });

  it('with a watch cache, a step reads nothing from the API and remembers its own write', async () => {
    const fake = new FakeCustomObjects();
    fake.objects.set('virtualservices/test/review-virtualservice', userVs());
    const remembered: ApiObject[] = [];
    const cache = fake.watchCache((o) => void remembered.push(o));
    const p = new IstioProvider(fake, cache);
    assert.deepEqual(await p.getRoutes(target), { stable: 80, canary: 20 });
    await p.setRoutes(target, 75, 25);
    assert.deepEqual(await p.getRoutes(target), { stable: 75, canary: 25 });
    assert.equal(fake.gets + fake.lists, 0, 'no reads from the API');
    assert.equal(remembered.length, 1);
    assert.equal(readWeights(remembered[0]!, target)!.canary, 25);
  });

  it('with a synced watch cache, ensuring the routing objects lists nothing from the API', async () => {
    const fake = new FakeCustomObjects();
    const cache = fake.watchCache();
    const p = new IstioProvider(fake, cache);
    await p.reconcile(target);
    await p.reconcile(target);
    assert.equal(fake.lists, 0, 'hundreds of releases in one namespace must not each list every routing object');
    assert.deepEqual(fake.creates.map((c) => c.kind), ['DestinationRule', 'VirtualService']);
  });

  it('a cache that has not seen our generated objects yet: the 409 is checked against the real object, not reported as a clash', async () => {
    const fake = new FakeCustomObjects();
    await new IstioProvider(fake).reconcile(target);
    const behind = { list: async () => [] as ApiObject[], remember: () => undefined };
    await new IstioProvider(fake, behind).reconcile(target);
    assert.equal(fake.creates.length, 2, 'nothing created twice');
  });

  it("a user's object of the same name that routes something else is still reported, naming the fix", async () => {
    const fake = new FakeCustomObjects();
    fake.objects.set('destinationrules/test/review', { metadata: { name: 'review' }, spec: { host: 'ratings' } });
    await assert.rejects(new IstioProvider(fake).reconcile(target), /a DestinationRule named review already exists in test but does not route review; rename it or set kube-canary.io\/service/);
  });

  it('rewrites the objects it generated for this Deployment when they route another Service (kube-canary.io/service changed since)', async () => {
    const fake = new FakeCustomObjects();
    await new IstioProvider(fake).reconcile({ ...target, service: 'nosuch' });
    assert.equal((fake.objects.get('destinationrules/test/review')!.spec as { host: string }).host, 'nosuch');
    await new IstioProvider(fake).reconcile(target);
    assert.equal((fake.objects.get('destinationrules/test/review')!.spec as { host: string }).host, 'review');
    assert.deepEqual((fake.objects.get('virtualservices/test/review')!.spec as { hosts: string[] }).hosts, ['review']);
    assert.equal(fake.creates.length, 2, 'rewritten in place, not created again');
    // Generated for another Deployment of the same name (another owner, which keeps it): not ours
    // to rewrite; this one's routes get a name of their own.
    const other = new FakeCustomObjects();
    await new IstioProvider(other).reconcile({ ...target, service: 'nosuch', owner: { ...target.owner, uid: 'uid-other' } });
    await new IstioProvider(other).reconcile(target);
    assert.equal((other.objects.get('destinationrules/test/review')!.spec as { host: string }).host, 'nosuch', 'theirs, untouched');
    assert.equal((other.objects.get('destinationrules/test/review-review')!.spec as { host: string }).host, 'review');
  });

  describe('a user VirtualService with match routes', () => {
    // A header that pins testers to stable, a path the user opted into the canary, then the default route.
    const withMatchRoutes = (): ApiObject =>
      parseYaml(`
metadata: {name: review-virtualservice, namespace: test}
spec:
  hosts: [review]
  http:
  - match: [{headers: {x-debug: {exact: "1"}}}]
    route:
    - destination: {host: review, subset: stable}
  - match: [{uri: {prefix: /api/}}]
    route:
    - destination: {host: review, subset: stable}
      weight: 100
    - destination: {host: review, subset: canary}
      weight: 0
  - route:
    - destination: {host: review, subset: stable}
      weight: 100
`) as ApiObject;
    const http = (vs: ApiObject) => vs.spec!.http as unknown[];

    it('weights the default route and match routes that have a canary destination; a match route to stable alone is never written', async () => {
      const fake = new FakeCustomObjects();
      fake.objects.set('virtualservices/test/review-virtualservice', withMatchRoutes());
      const p = new IstioProvider(fake);
      await p.reconcile(target);
      assert.deepEqual(await p.getRoutes(target), { stable: 100, canary: 0 }, 'the pinned route is not read as a route at 100/0 either');
      for (const [stable, canary] of [[75, 25], [100, 0]] as const) {
        await p.setRoutes(target, stable, canary);
        assert.deepEqual(await p.getRoutes(target), { stable, canary });
        const vs = fake.objects.get('virtualservices/test/review-virtualservice')!;
        assert.deepEqual(http(vs)[0], http(withMatchRoutes())[0], `the pinned route at ${stable}/${canary}`);
        assert.deepEqual(http(vs)[1], { match: [{ uri: { prefix: '/api/' } }], route: [{ destination: { host: 'review', subset: 'stable' }, weight: stable }, { destination: { host: 'review', subset: 'canary' }, weight: canary }] });
        assert.deepEqual(http(vs)[2], { route: [{ destination: { host: 'review', subset: 'stable' }, weight: stable }, { destination: { host: 'review', subset: 'canary' }, weight: canary }] });
      }
      assert.ok(fake.patches.every((x) => x.ops.every((o) => !o.path.startsWith('/spec/http/0/'))), JSON.stringify(fake.patches));
    });

    it("weights a route whose match is on the path, method or gateway (the canary article's ingress route): that is general traffic, not a segment", async () => {
      for (const match of [[{ uri: { prefix: '/review/' } }], [{ gateways: ['public-gateway'] }], [{ uri: { prefix: '/a/' } }, { headers: { 'x-debug': { exact: '1' } } }]]) {
        const fake = new FakeCustomObjects();
        const vs = withMatchRoutes();
        http(vs).splice(0, 3, { match, route: [{ destination: { host: 'review', subset: 'stable' } }] } as never);
        fake.objects.set('virtualservices/test/review-virtualservice', vs);
        const p = new IstioProvider(fake);
        await p.reconcile(target);
        await p.setRoutes(target, 75, 25);
        assert.deepEqual(await p.getRoutes(target), { stable: 75, canary: 25 }, JSON.stringify(match));
        assert.deepEqual(http(fake.objects.get('virtualservices/test/review-virtualservice')!)[0], { match, route: [{ destination: { host: 'review', subset: 'stable' }, weight: 75 }, { destination: { host: 'review', subset: 'canary' }, weight: 25 }] });
      }
    });

    it('when only match routes send the host to stable, the release is held with what to change, and nothing is written', async () => {
      const fake = new FakeCustomObjects();
      const vs = withMatchRoutes();
      http(vs).splice(1, 2);
      fake.objects.set('virtualservices/test/review-virtualservice', vs);
      const p = new IstioProvider(fake);
      assert.equal(await p.getRoutes(target), undefined);
      await assert.rejects(p.reconcile(target), /VirtualService review-virtualservice routes host review to subset "stable" only in routes whose match picks a segment of the requests \(headers, query parameters, source\), which kube-canary leaves alone; add a route without match/);
      assert.deepEqual(fake.objects.get('virtualservices/test/review-virtualservice'), vs);
      assert.deepEqual(fake.creates.map((c) => c.kind), ['DestinationRule'], 'no second VirtualService for the host');
    });
  });

  describe('objects it generated, left without an owner (the Deployment deleted with --cascade=orphan)', () => {
    const generated = ['destinationrules/test/review', 'virtualservices/test/review'];
    /** Generated for an earlier Deployment of the same name, then stripped of their owner as the garbage collector does. */
    async function orphaned(): Promise<FakeCustomObjects> {
      const fake = new FakeCustomObjects();
      await new IstioProvider(fake).reconcile({ ...target, owner: { ...target.owner, uid: 'uid-old' } });
      for (const k of generated) delete fake.objects.get(k)!.metadata.ownerReferences;
      return fake;
    }

    it('are given to the Deployment created again under the same name when its next release ensures the routes, so they go with it', async () => {
      const caches: Record<string, (fake: FakeCustomObjects) => ReturnType<FakeCustomObjects['watchCache']> | undefined> = {
        'without a watch cache': () => undefined,
        'with a synced watch cache': (fake) => fake.watchCache(),
        'with a watch cache that has not seen them (found on create)': () => ({ list: async () => [], remember: () => undefined }),
      };
      for (const [how, cacheOf] of Object.entries(caches)) {
        const fake = await orphaned();
        const p = new IstioProvider(fake, cacheOf(fake));
        await p.reconcile(target);
        for (const k of generated) assert.deepEqual(fake.objects.get(k)!.metadata.ownerReferences, [target.owner], `${k} ${how}`);
        assert.equal(fake.creates.length, 2, 'nothing created again');
        const patches = fake.patches.length;
        await p.reconcile(target);
        assert.equal(fake.patches.length, patches, `owned now: nothing more to write (${how})`);
      }
    });

    it('are given to the Deployment in the same write that rewrites them for a changed kube-canary.io/service', async () => {
      const fake = await orphaned();
      await new IstioProvider(fake).reconcile({ ...target, service: 'ratings' });
      assert.equal((fake.objects.get('destinationrules/test/review')!.spec as { host: string }).host, 'ratings');
      for (const k of generated) assert.deepEqual(fake.objects.get(k)!.metadata.ownerReferences, [target.owner], k);
      assert.equal(fake.patches.length, 2);
    });

    it("leaves an object without kube-canary's label as it is; one generated for another Deployment behind the same Service is owned by both, so deleting either keeps the other's routes", async () => {
      const fake = new FakeCustomObjects();
      fake.objects.set('virtualservices/test/review-virtualservice', userVs());
      fake.objects.set('destinationrules/test/review-destinationrule', { metadata: { name: 'review-destinationrule' }, spec: { host: 'review', subsets: [{ name: 'stable', labels: { version: 'stable' } }, { name: 'canary', labels: { version: 'canary' } }] } });
      await new IstioProvider(fake).reconcile(target);
      assert.equal(fake.patches.length, 0, "the user's objects");
      const owned = new FakeCustomObjects();
      const other = { ...target.owner, uid: 'uid-other' };
      await new IstioProvider(owned).reconcile({ ...target, owner: other });
      await new IstioProvider(owned).reconcile(target);
      for (const k of generated) assert.deepEqual(owned.objects.get(k)!.metadata.ownerReferences, [other, target.owner], k);
      const patches = owned.patches.length;
      await new IstioProvider(owned).reconcile(target);
      assert.equal(owned.patches.length, patches, 'owned by both now: nothing more to write');
    });

    it("a Deployment moved to another Service leaves generated routes that another Deployment's releases also use as they are (theirs now) and gets routes of its own", async () => {
      const fake = new FakeCustomObjects();
      const b = { ...target, name: 'review-b', owner: { ...target.owner, name: 'review-b', uid: 'uid-b' } };
      await new IstioProvider(fake).reconcile(target); // generated "review" for Service review
      await new IstioProvider(fake).reconcile(b); // review-b behind the same Service: co-owner
      await new IstioProvider(fake).reconcile({ ...target, service: 'ratings' }); // review moves to Service ratings
      for (const k of generated) {
        const o = fake.objects.get(k)!;
        assert.deepEqual(o.metadata.ownerReferences, [b.owner], `${k}: review-b's alone now`);
      }
      assert.equal((fake.objects.get('destinationrules/test/review')!.spec as { host: string }).host, 'review', 'still routing Service review');
      const mine = fake.objects.get('destinationrules/test/review-ratings')!;
      assert.equal((mine.spec as { host: string }).host, 'ratings');
      assert.deepEqual(mine.metadata.ownerReferences, [target.owner]);
      assert.ok(fake.objects.get('virtualservices/test/review-ratings'));

      // Moved again: the object of the other Deployment is still theirs; this one gets another name again.
      await new IstioProvider(fake).reconcile({ ...target, service: 'details' });
      assert.equal((fake.objects.get('destinationrules/test/review-details')!.spec as { host: string }).host, 'details');
      assert.deepEqual(fake.objects.get('destinationrules/test/review')!.metadata.ownerReferences, [b.owner]);
    });

    it('a Deployment whose name is taken by routes generated for another Service (e.g. "api" moved to "v2", then a Deployment "api-v2") gets routes of its own, not an error', async () => {
      const fake = new FakeCustomObjects();
      const other = { ...target, name: 'api', service: 'v2', owner: { ...target.owner, name: 'api', uid: 'uid-api' } };
      await new IstioProvider(fake).reconcile(other);
      await new IstioProvider(fake).reconcile({ ...other, name: 'api-v2-x', service: 'unused' }); // unrelated
      fake.objects.set('destinationrules/test/review', { ...structuredClone(fake.objects.get('destinationrules/test/api')!), metadata: { ...structuredClone(fake.objects.get('destinationrules/test/api')!.metadata), name: 'review' } });
      await new IstioProvider(fake).reconcile(target); // "review" is taken by one routing v2 for api
      assert.equal((fake.objects.get('destinationrules/test/review-review')!.spec as { host: string }).host, 'review');
      assert.equal((fake.objects.get('destinationrules/test/review')!.spec as { host: string }).host, 'v2', 'theirs, untouched');
    });

    it("a name taken by a user's object is an error naming it, the same on every retry", async () => {
      const fake = new FakeCustomObjects();
      fake.objects.set('destinationrules/test/review', { metadata: { name: 'review' }, spec: { host: 'somewhere-else' } });
      for (let i = 0; i < 2; i++) await assert.rejects(new IstioProvider(fake).reconcile(target), /a DestinationRule named review already exists in test but does not route review; rename it or set kube-canary.io\/service/);
    });

    it('the owner is not written over a change made since the object was read (a user taking it over)', async () => {
      const fake = await orphaned();
      const before = new FakeCustomObjects();
      before.objects = new Map([...fake.objects].map(([k, v]) => [k, structuredClone(v)]));
      await fake.jsonPatch(VIRTUAL_SERVICES, 'test', 'review', [{ op: 'remove', path: '/metadata/labels' }]);
      await assert.rejects(new IstioProvider(fake, before.watchCache()).reconcile(target), (err: { code?: number }) => err.code === 422);
      assert.equal(fake.objects.get('virtualservices/test/review')!.metadata.ownerReferences, undefined);
    });
  });

  it('refuses to generate a second VirtualService for a host a user VirtualService routes without subsets', async () => {
    const fake = new FakeCustomObjects();
    fake.objects.set('virtualservices/test/mine', { metadata: { name: 'mine' }, spec: { hosts: ['review'], http: [{ route: [{ destination: { host: 'review' } }] }] } });
    await assert.rejects(new IstioProvider(fake).reconcile(target), /VirtualService mine routes host review but not to subset "stable"/);
  });
});
