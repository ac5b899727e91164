/**
 * The reconciler against an in-memory world (test doubles of the API, the traffic provider, the
 * gates and the event recorder): whole releases end to end, and a crash injected before every
 * single write of a release, after which a fresh reconciler (nothing kept in memory) carries on.
 */
import assert from 'node:assert/strict';
import type { V1Deployment, V1ReplicaSet } from '@kubernetes/client-node';
import fjp, { type Operation } from 'fast-json-patch';
import { ANN_FAILED_REVISION, ANN_REVISION, ANN_STABLE_REVISION, ANN_STATUS } from '../../src/config/contract.js';
import { parseStatus } from '../../src/config/status.js';
import { templateHash } from '../../src/config/template-hash.js';
import { createLogger } from '../../src/kube/logger.js';
import type { CheckResult, GateRunner, MetricProvider, WebhookPayload } from '../../src/metrics/provider.js';
import { GateSlots } from '../../src/progressor/gate-runs.js';
import { ProgressorMetrics } from '../../src/progressor/metrics.js';
import { buildCanary } from '../../src/progressor/canary.js';
import { type ReconcileResult, Reconciler, type ReconcilerDeps, StaleError, isOurCanary } from '../../src/progressor/reconciler.js';
import { HOLD_REPEAT_MS } from '../../src/progressor/step.js';
import type { RouteTarget, Routes, TrafficProvider } from '../../src/traffic/provider.js';

class Crash extends Error {}
const apiError = (code: number, message: string) => Object.assign(new Error(message), { code });

/** Test double of the cluster: one stable Deployment, its ReplicaSets, a canary, routes, events. */
class World {
  stable: V1Deployment;
  canary?: V1Deployment;
  replicaSets: V1ReplicaSet[] = [];
  routes?: Routes;
  events: string[] = [];
  writes = 0;
  crashAt = -1;
  rv = 1;
  statusWrites: string[] = [];
  /** The canary informer has not seen the canary (yet): the cache says none while the API has one. */
  canaryCacheLags = false;
  /** Services in the namespace (the release routes the first by default). */
  services = ['review'];
  /** Their creationTimestamp (as the API sends it: a string). */
  serviceCreated = '2025-01-01T00:00:00Z';
  serviceReads = 0;

  constructor(analysis: object, image = 'review:1.7.0') {
    this.stable = {
      metadata: { name: 'review', namespace: 'test', uid: 'uid-stable', resourceVersion: '1', generation: 1, labels: { app: 'review', 'kube-canary.io/enabled': 'true' }, annotations: { 'kube-canary.io/analysis': JSON.stringify(analysis), 'kube-canary.io/progress-deadline': '60s' } },
      spec: { replicas: 2, selector: { matchLabels: { app: 'review' } }, template: { metadata: { labels: { app: 'review', version: 'stable' } }, spec: { containers: [{ name: 'review', image }] } } },
      status: {},
    };
    this.settle();
  }

  /** What the webhook does on `kubectl set image`. */
  capture(image: string): string {
    const t = structuredClone(this.stable.spec!.template);
    t.spec!.containers[0]!.image = image;
    const ann = this.stable.metadata!.annotations!;
    const stableRev = ann[ANN_STABLE_REVISION] ?? templateHash(this.stable.spec!.template, 'version');
    const rev = templateHash(t, 'version');
    ann[ANN_REVISION] = rev;
    ann[ANN_STABLE_REVISION] = stableRev;
    this.stable.spec!.template = t;
    this.stable.spec!.paused = true;
    this.bump(true);
    return rev;
  }

  /** `kubectl annotate deployment review KEY=VALUE` (or KEY- with undefined): no template change, not captured. */
  annotate(key: string, value: string | undefined) {
    const ann = this.stable.metadata!.annotations!;
    if (value === undefined) delete ann[key];
    else ann[key] = value;
    this.bump(true);
  }

  /** As the API server does for a Deployment: a new resourceVersion always, a new generation when spec or annotations change. */
  private bump(generationChanged: boolean) {
    this.stable.metadata!.resourceVersion = String(++this.rv);
    if (generationChanged) this.stable.metadata!.generation = (this.stable.metadata!.generation ?? 0) + 1;
  }

  /** The Deployment controller's status update (status subresource): a new resourceVersion, the same generation. */
  controllerStatusUpdate() {
    this.stable.status = { ...this.stable.status, observedGeneration: this.stable.metadata!.generation! };
    this.bump(false);
  }

  private write(what: string) {
    this.writes += 1;
    if (this.writes === this.crashAt) throw new Crash(`crash before write ${this.writes} (${what})`);
  }

  /** The Deployment controller and kwok, instantly: unpaused Deployments roll, every pod is ready. */
  settle() {
    const s = this.stable;
    if (!s.spec!.paused) {
      const h = templateHash(s.spec!.template, 'version');
      let rs = this.replicaSets.find((r) => templateHash(r.spec!.template, 'version') === h);
      if (!rs) {
        rs = { metadata: { name: `review-${h}`, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'review', uid: 'uid-stable' }] }, spec: { selector: {}, template: { ...structuredClone(s.spec!.template), metadata: { ...s.spec!.template.metadata, labels: { ...s.spec!.template.metadata!.labels, 'pod-template-hash': h } } } }, status: { replicas: 0 } };
        this.replicaSets.push(rs);
      }
      for (const r of this.replicaSets) r.status = { replicas: r === rs ? s.spec!.replicas! : 0 };
      s.status = { observedGeneration: s.metadata!.generation!, replicas: 2, updatedReplicas: 2, availableReplicas: 2 };
    } else {
      s.status = { ...s.status, observedGeneration: s.metadata!.generation! };
    }
    if (this.canary) this.canary.status = { observedGeneration: this.canary.metadata!.generation ?? 1, updatedReplicas: this.canary.spec!.replicas!, availableReplicas: this.canary.spec!.replicas! };
  }

  kube = {
    createDeployment: async (_ns: string, body: V1Deployment) => {
      this.write('create canary');
      if (this.canary) throw apiError(409, 'exists');
      this.canary = { ...structuredClone(body), metadata: { ...structuredClone(body.metadata), uid: 'uid-canary', generation: 1 } };
      return this.canary;
    },
    patchDeployment: async (_ns: string, name: string, ops: Operation[]) => {
      this.write(`patch ${name}`);
      if (name === 'review-canary') {
        if (!this.canary) throw apiError(404, 'not found');
        this.canary = fjp.applyPatch(structuredClone(this.canary), ops, true, false).newDocument;
        this.canary.metadata!.generation = (this.canary.metadata!.generation ?? 1) + 1;
        return this.canary;
      }
      let next: V1Deployment;
      try {
        next = fjp.applyPatch(structuredClone(this.stable), ops, true, false).newDocument;
      } catch {
        throw apiError(422, 'the server rejected our request due to an error in our request');
      }
      const status = next.metadata!.annotations![ANN_STATUS];
      if (status !== this.stable.metadata!.annotations![ANN_STATUS] && status) this.statusWrites.push(parseStatus(status)!.phase);
      const generationChanged = JSON.stringify([next.spec, next.metadata!.annotations]) !== JSON.stringify([this.stable.spec, this.stable.metadata!.annotations]);
      this.stable = next;
      this.bump(generationChanged);
      return next;
    },
    deleteDeployment: async () => {
      this.write('delete canary');
      if (!this.canary) throw apiError(404, 'not found');
      this.canary = undefined;
      return {};
    },
    getDeployment: async (_ns: string, name: string) => {
      if (name === 'review-canary' && this.canary) return structuredClone(this.canary);
      throw apiError(404, 'not found');
    },
    listReplicaSets: async () => ({ items: structuredClone(this.replicaSets) }),
    getService: async (_ns: string, name: string) => {
      this.serviceReads++;
      if (!this.services.includes(name)) throw apiError(404, 'not found');
      return { metadata: { name, creationTimestamp: this.serviceCreated } };
    },
  };

  provider: TrafficProvider = {
    name: 'fake',
    reconcile: async (_t: RouteTarget) => {
      if (!this.routes) {
        this.write('create routes');
        this.routes = { stable: 100, canary: 0 };
      }
    },
    setRoutes: async (_t: RouteTarget, stable: number, canary: number) => {
      this.write(`set routes ${stable}/${canary}`);
      if (!this.routes) throw new Error('no routes');
      this.routes = { stable, canary };
    },
    getRoutes: async () => (this.routes ? { ...this.routes } : undefined),
  };
}

/** Test doubles of the metrics package's interfaces. */
class StubMetrics implements MetricProvider {
  calls = 0;
  constructor(public pass = true) {}
  async check(m: { name: string }): Promise<CheckResult> {
    this.calls += 1;
    return { name: m.name, passed: this.pass, value: this.pass ? 100 : 50, min: 99, message: `${m.name} ${this.pass ? 100 : 50}` };
  }
}
class StubWebhooks implements GateRunner {
  readonly payloads: WebhookPayload[] = [];
  async run(g: { name: string }, payload: WebhookPayload): Promise<CheckResult> {
    this.payloads.push(payload);
    return { name: g.name, passed: true, message: 'ok' };
  }
}

/** An approval service: refuses (HTTP 503) until `approve` is set. */
class ApprovalWebhooks implements GateRunner {
  approve = false;
  calls = 0;
  async run(g: { name: string }): Promise<CheckResult> {
    this.calls += 1;
    return this.approve ? { name: g.name, passed: true, message: 'ok' } : { name: g.name, passed: false, message: `webhook ${g.name}: HTTP 503` };
  }
}

const ANALYSIS = { interval: '10s', threshold: 2, maxWeight: 50, stepWeight: 25, metrics: [{ name: 'request-success-rate', thresholdRange: { min: 99 }, interval: '10s' }] };

function reconcilerFor(w: World, clock: { now: number }, metrics: MetricProvider = new StubMetrics(), promMetrics = new ProgressorMetrics(false), webhooks: GateRunner = new StubWebhooks(), extra: Partial<ReconcilerDeps> = {}) {
  return new Reconciler({
    kube: w.kube as never,
    providers: { get: () => w.provider },
    gates: { metrics, webhooks },
    events: { emit: async (_t, _warn, _reason, message) => void w.events.push(message) },
    metrics: promMetrics,
    log: createLogger('test', 'silent'),
    trackLabel: 'version',
    defaults: {},
    canaryOf: () => (w.canaryCacheLags ? undefined : w.canary),
    mayAct: () => true,
    now: () => clock.now,
    ...extra,
  });
}

/** Nothing decided, nothing written (at most a timer to look again). */
const undecided = (r: ReconcileResult, msg?: string) => assert.deepEqual([r.phase, r.wroteResourceVersion], [undefined, undefined], msg);

/** Drive reconciles like the controller does (timers, retries) until the release is over. */
async function drive(w: World, clock: { now: number }, opts: { metrics?: StubMetrics; promMetrics?: ProgressorMetrics; webhooks?: GateRunner; maxRounds?: number } = {}) {
  let crashes = 0;
  for (let round = 0; round < (opts.maxRounds ?? 200); round++) {
    w.settle();
    const r = reconcilerFor(w, clock, opts.metrics, opts.promMetrics, opts.webhooks);
    try {
      const res = await r.reconcile(structuredClone(w.stable));
      const s = parseStatus(w.stable.metadata!.annotations![ANN_STATUS]);
      if (!w.stable.metadata!.annotations![ANN_REVISION] && s && ['Succeeded', 'Failed'].includes(s.phase)) return { crashes };
      clock.now += Math.max(res.requeueAfterMs ?? 1000, 1);
    } catch (err) {
      if (err instanceof Crash) crashes += 1;
      else if (!(err instanceof StaleError)) throw err;
      clock.now += 500;
    }
  }
  throw new Error(`release did not finish: ${w.stable.metadata!.annotations![ANN_STATUS]}`);
}

/**
 * Ship 1.8.0 with one reconciler (as the controller keeps one) until the canary carries 25 %;
 * the next check is then due.
 */
async function shippedTo25(analysis: ConstructorParameters<typeof World>[0], metrics: MetricProvider, webhooks: GateRunner, extra: Partial<ReconcilerDeps> = {}) {
  const w = new World(analysis);
  const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
  const woken: string[] = [];
  const r = reconcilerFor(w, clock, metrics, new ProgressorMetrics(false), webhooks, { gateInlineMs: 20, wake: (k) => woken.push(k), ...extra });
  const once = () => {
    w.settle();
    return r.reconcile(structuredClone(w.stable));
  };
  w.capture('review:1.8.0');
  for (let i = 0; i < 20 && w.routes?.canary !== 25; i++) clock.now += (await once()).requeueAfterMs ?? 1000;
  assert.equal(w.routes?.canary, 25);
  clock.now += 10_000;
  return { w, clock, woken, once, r };
}

describe('progressor reconciler (in-memory world)', () => {
  it("promotes the article's release: events in order, stable on the new image, routes 100/0, no canary", async () => {
    const w = new World(ANALYSIS);
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const prom = new ProgressorMetrics(false);
    w.capture('review:1.8.0');
    await drive(w, clock, { promMetrics: prom });
    w.settle();
    assert.equal(w.stable.spec!.template.spec!.containers[0]!.image, 'review:1.8.0');
    assert.equal(w.stable.spec!.paused, false);
    assert.deepEqual(w.routes, { stable: 100, canary: 0 });
    assert.equal(w.canary, undefined);
    assert.equal(w.stable.metadata!.annotations![ANN_STABLE_REVISION], undefined);
    const rev = parseStatus(w.stable.metadata!.annotations![ANN_STATUS])!.revision;
    assert.deepEqual(w.events.filter((e) => !e.startsWith('Waiting')), [
      'New revision detected review.test',
      'Advance review.test canary weight 25',
      'Advance review.test canary weight 50',
      `Promoting revision ${rev} into review.test`,
      'Routing all traffic to review.test',
      'Promotion completed! Scaling down review-canary.test',
    ]);
    assert.match(await prom.registry.metrics(), /kube_canary_promotions_total\{namespace="test",name="review"\} 1/);
  });

  it('rolls back a failing release without touching the stable pods and records the failed revision', async () => {
    const w = new World(ANALYSIS);
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const stableRs = structuredClone(w.replicaSets);
    const rev = w.capture('review:1.9.0');
    await drive(w, clock, { metrics: new StubMetrics(false) });
    w.settle();
    assert.equal(w.stable.spec!.template.spec!.containers[0]!.image, 'review:1.7.0');
    assert.equal(w.stable.metadata!.annotations![ANN_FAILED_REVISION], rev);
    assert.deepEqual(w.routes, { stable: 100, canary: 0 });
    assert.equal(w.canary, undefined);
    // The restored template is the running ReplicaSet's (minus pod-template-hash): no new ReplicaSet, no pod churn.
    assert.equal(w.replicaSets.length, stableRs.length);
    assert.equal(templateHash(w.stable.spec!.template, 'version'), templateHash(stableRs[0]!.spec!.template, 'version'));
    assert.equal(w.stable.spec!.template.metadata!.labels!['pod-template-hash'], undefined);
    assert.ok(w.events.some((e) => e.startsWith('Rolling back review.test: failed checks threshold reached 2')));
    assert.ok(w.events.includes('Canary failed! Scaling down review-canary.test'));
  });

  it('a crash before any single write of a release never breaks it: same end state, one promotion', async () => {
    // Count the writes of an undisturbed release first.
    const base = new World(ANALYSIS);
    base.capture('review:1.8.0');
    await drive(base, { now: Date.parse('2026-01-01T00:00:00Z') });
    const total = base.writes;
    assert.ok(total >= 8, `a release makes several writes (${total})`);
    for (let k = 1; k <= total; k++) {
      const w = new World(ANALYSIS);
      w.capture('review:1.8.0');
      w.crashAt = k;
      const prom = new ProgressorMetrics(false);
      const { crashes } = await drive(w, { now: Date.parse('2026-01-01T00:00:00Z') }, { promMetrics: prom });
      w.settle();
      assert.equal(crashes, 1, `crash ${k} happened`);
      assert.equal(w.stable.spec!.template.spec!.containers[0]!.image, 'review:1.8.0', `crash ${k}: image`);
      assert.equal(w.stable.spec!.paused, false, `crash ${k}: paused`);
      assert.deepEqual(w.routes, { stable: 100, canary: 0 }, `crash ${k}: routes`);
      assert.equal(w.canary, undefined, `crash ${k}: canary left behind`);
      assert.equal(w.statusWrites.filter((p) => p === 'Promoting').length, 1, `crash ${k}: promoted once`);
      assert.equal(w.statusWrites.filter((p) => p === 'Succeeded').length, 1, `crash ${k}: succeeded once`);
    }
  });

  it('a crash before any single write of a rollback never leaves weight on the canary', async () => {
    const base = new World(ANALYSIS);
    base.capture('review:1.9.0');
    await drive(base, { now: Date.parse('2026-01-01T00:00:00Z') }, { metrics: new StubMetrics(false) });
    for (let k = 1; k <= base.writes; k++) {
      const w = new World(ANALYSIS);
      w.capture('review:1.9.0');
      w.crashAt = k;
      await drive(w, { now: Date.parse('2026-01-01T00:00:00Z') }, { metrics: new StubMetrics(false) });
      w.settle();
      assert.equal(w.stable.spec!.template.spec!.containers[0]!.image, 'review:1.7.0', `crash ${k}: image`);
      assert.deepEqual(w.routes, { stable: 100, canary: 0 }, `crash ${k}: routes`);
      assert.equal(w.canary, undefined, `crash ${k}: canary`);
      assert.equal(w.statusWrites.filter((p) => p === 'Failed').length, 1, `crash ${k}: failed once`);
    }
  });

  it('a second set image mid-release restarts the analysis and promotes only the newest', async () => {
    const w = new World(ANALYSIS);
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    w.capture('review:1.8.0');
    // Run until weight 25 is applied, then ship 1.8.1.
    for (let i = 0; i < 10 && w.routes?.canary !== 25; i++) {
      w.settle();
      const res = await reconcilerFor(w, clock).reconcile(structuredClone(w.stable));
      clock.now += res.requeueAfterMs ?? 1000;
    }
    assert.equal(w.routes?.canary, 25);
    w.capture('review:1.8.1');
    await drive(w, clock);
    w.settle();
    assert.equal(w.stable.spec!.template.spec!.containers[0]!.image, 'review:1.8.1');
    assert.ok(w.events.some((e) => /analysis restarts/.test(e)));
    assert.equal(w.events.filter((e) => e.startsWith('Promoting')).length, 1);
  });

  it('a canary deleted mid-release is recreated with one CanaryRecreated Warning; a canary only missing from the cache gets none', async () => {
    const w = new World(ANALYSIS);
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    w.capture('review:1.8.0');
    for (let i = 0; i < 20 && !(parseStatus(w.stable.metadata!.annotations![ANN_STATUS])?.weight ?? 0); i++) {
      w.settle();
      const r = await reconcilerFor(w, clock).reconcile(structuredClone(w.stable));
      clock.now += Math.max(r.requeueAfterMs ?? 1000, 1);
    }
    assert.ok((parseStatus(w.stable.metadata!.annotations![ANN_STATUS])?.weight ?? 0) > 0, 'traffic on the canary');
    const recreated = () => w.events.filter((e) => /review-canary\.test was deleted during the release of revision \w+; recreated it/.test(e));

    w.canaryCacheLags = true; // the API has the canary, our cache does not (yet)
    await reconcilerFor(w, clock).reconcile(structuredClone(w.stable));
    assert.deepEqual(recreated(), [], 'no Warning when the create finds it exists');
    w.canaryCacheLags = false;

    w.canary = undefined; // kubectl delete deployment review-canary
    await reconcilerFor(w, clock).reconcile(structuredClone(w.stable));
    assert.ok(w.canary, 'recreated');
    assert.equal(recreated().length, 1, w.events.join('\n'));
  });

  it("sends a new release's webhooks its own revision and phase, not the previous release's (Flagger's checksum)", async () => {
    const w = new World({ ...ANALYSIS, webhooks: [{ name: 'approve', type: 'confirm-rollout', url: 'http://approve.test/' }] });
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const hooks = new StubWebhooks();
    const first = w.capture('review:1.8.0');
    w.settle();
    await reconcilerFor(w, clock, undefined, undefined, hooks).reconcile(structuredClone(w.stable));
    assert.deepEqual(hooks.payloads.map((p) => [p.checksum, p.phase]), [[first, 'Initializing']]);
    const second = w.capture('review:1.9.0'); // supersedes the first mid-release
    w.settle();
    clock.now += 1000;
    await reconcilerFor(w, clock, undefined, undefined, hooks).reconcile(structuredClone(w.stable));
    assert.deepEqual(hooks.payloads.at(-1) && [hooks.payloads.at(-1)!.checksum, hooks.payloads.at(-1)!.phase], [second, 'Initializing']);
  });

  it('holds a release while confirm-rollout refuses: no canary, the wait said once (a restart on every reconcile), promoted once it approves', async () => {
    const w = new World({ ...ANALYSIS, webhooks: [{ name: 'approve', type: 'confirm-rollout', url: 'http://approve.test/' }] });
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const hooks = new ApprovalWebhooks();
    w.capture('review:1.8.0');
    for (let i = 0; i < 10; i++) {
      w.settle();
      // A fresh reconciler each time: nothing kept in memory, as after a restart.
      const r = await reconcilerFor(w, clock, undefined, undefined, hooks).reconcile(structuredClone(w.stable));
      assert.equal(w.canary, undefined, `no canary while refused (reconcile ${i})`);
      clock.now += i % 2 === 0 ? 3000 : (r.requeueAfterMs ?? 0); // a watch event between checks, then the requeue
    }
    const s = parseStatus(w.stable.metadata!.annotations![ANN_STATUS])!;
    assert.equal(s.phase, 'Waiting');
    assert.equal(s.waitingOn, 'confirm-rollout');
    assert.deepEqual(w.routes, { stable: 100, canary: 0 });
    assert.equal(hooks.calls, 5, 'asked once per interval');
    assert.deepEqual(w.events, ['New revision detected review.test', 'Waiting for confirm-rollout approval of review.test: webhook approve: HTTP 503']);
    hooks.approve = true;
    await drive(w, clock, { webhooks: hooks });
    w.settle();
    assert.equal(w.stable.spec!.template.spec!.containers[0]!.image, 'review:1.8.0');
    assert.equal(parseStatus(w.stable.metadata!.annotations![ANN_STATUS])!.phase, 'Succeeded');
    assert.ok(w.events.includes('Advance review.test canary weight 50'), w.events.join('\n'));
  });

  it('holds a release whose Service does not exist (a typo in kube-canary.io/service), saying so once, and goes on once it does', async () => {
    const w = new World(ANALYSIS);
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    w.services = [];
    w.capture('review:1.8.0');
    w.settle();
    const r = reconcilerFor(w, clock);
    for (let i = 0; i < 3; i++) await assert.rejects(r.reconcile(structuredClone(w.stable)), /Service review not found in test/);
    assert.equal(w.routes, undefined, 'no routes generated for a host without a Service');
    const blocked = () => w.events.filter((e) => e.startsWith('Release blocked, retrying: Service review not found in test: kube-canary routes its host; create it, or set kube-canary.io/service on review to the Service in front of it'));
    assert.equal(blocked().length, 1, `said once, not on every retry:\n${w.events.join('\n')}`);
    // Still held after the apiserver would have dropped that Event (an hour by default): said again.
    clock.now += HOLD_REPEAT_MS - 1000;
    await assert.rejects(r.reconcile(structuredClone(w.stable)));
    assert.equal(blocked().length, 1);
    clock.now += 1000;
    await assert.rejects(r.reconcile(structuredClone(w.stable)));
    assert.equal(blocked().length, 2, 'said again after HOLD_REPEAT_MS');
    w.services = ['review'];
    await r.reconcile(structuredClone(w.stable));
    assert.deepEqual(w.routes, { stable: 100, canary: 0 });
  });

  it('takes over a canary left without an owner (the stable Deployment deleted with --cascade=orphan, then created again): owned again, the release goes on', async () => {
    const w = new World(ANALYSIS);
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const orphan = buildCanary(structuredClone(w.stable), 'version', 1);
    delete orphan.metadata!.ownerReferences;
    w.canary = { ...orphan, metadata: { ...orphan.metadata, uid: 'uid-old-canary', generation: 1 } };
    w.capture('review:1.8.0');
    w.settle();
    await reconcilerFor(w, clock).reconcile(structuredClone(w.stable));
    assert.deepEqual(w.canary?.metadata?.ownerReferences?.map((o) => o.uid), ['uid-stable'], 'owned by the stable Deployment again');
    assert.equal(w.canary?.spec?.template.spec?.containers[0]?.image, 'review:1.8.0');
    assert.ok(!w.events.some((e) => /not a kube-canary canary/.test(e)), w.events.join('\n'));
    // One owned by another object stays a stranger's.
    const foreign = isOurCanary({ ...orphan, metadata: { ...orphan.metadata, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'other', uid: 'uid-other' }] } }, w.stable);
    assert.equal(foreign, false);
  });

  it('a stale view loses: after an annotation or spec change the generation test fails and nothing of the transition is committed', async () => {
    const w = new World(ANALYSIS);
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    w.capture('review:1.8.0');
    const stale = structuredClone(w.stable);
    w.annotate('someone', 'else');
    await assert.rejects(reconcilerFor(w, clock).reconcile(stale), StaleError);
    assert.equal(w.stable.metadata!.annotations![ANN_STATUS], undefined);
    assert.deepEqual(w.events, []);

    const staleSpec = structuredClone(w.stable);
    w.stable.spec!.replicas = 5;
    w.stable.metadata!.generation! += 1;
    w.stable.metadata!.resourceVersion = String(++w.rv);
    await assert.rejects(reconcilerFor(w, clock).reconcile(staleSpec), StaleError);
    assert.equal(w.stable.metadata!.annotations![ANN_STATUS], undefined);
  });

  it('a Deployment controller status update since our read is not a conflict: the transition commits', async () => {
    const w = new World(ANALYSIS);
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    w.capture('review:1.8.0');
    const read = structuredClone(w.stable);
    w.controllerStatusUpdate();
    assert.notEqual(read.metadata!.resourceVersion, w.stable.metadata!.resourceVersion);
    await reconcilerFor(w, clock).reconcile(read);
    assert.equal(parseStatus(w.stable.metadata!.annotations![ANN_STATUS])?.phase, 'Initializing');
  });

  it('a Deployment deleted and created again under the same name since our read is not written to', async () => {
    const w = new World(ANALYSIS);
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    w.capture('review:1.8.0');
    const read = structuredClone(w.stable);
    w.stable.metadata!.uid = 'uid-successor';
    await assert.rejects(reconcilerFor(w, clock).reconcile(read), StaleError);
    assert.equal(w.stable.metadata!.annotations![ANN_STATUS], undefined);
  });
});

describe('progressor reconciler: kube-canary.io/request (in-memory world)', () => {
  const ANN_REQUEST = 'kube-canary.io/request';
  const T = Date.parse('2026-01-01T00:00:00Z');
  const statusOf = (w: World) => parseStatus(w.stable.metadata!.annotations![ANN_STATUS]);

  /** One reconcile as the controller runs it (cache settled first); returns the requeue. */
  async function once(w: World, clock: { now: number }, metrics?: StubMetrics, prom?: ProgressorMetrics) {
    w.settle();
    return reconcilerFor(w, clock, metrics, prom).reconcile(structuredClone(w.stable));
  }

  /** Ship 1.8.0 and run until the canary carries `weight`; the next check is then due. */
  async function releaseAt(weight: number, metrics = new StubMetrics()) {
    const w = new World(ANALYSIS);
    const clock = { now: T };
    w.capture('review:1.8.0');
    for (let i = 0; i < 20 && w.routes?.canary !== weight; i++) {
      const res = await once(w, clock, metrics);
      clock.now += res.requeueAfterMs ?? 1000;
    }
    assert.equal(w.routes?.canary, weight);
    return { w, clock, metrics };
  }

  it('a step says which instant its next step is due from (decidedAt), and hands back the Deployment its commit wrote', async () => {
    const { w, clock, metrics } = await releaseAt(25);
    clock.now += 10_000;
    const decidedFor = clock.now;
    const r = await once(w, clock, metrics);
    assert.equal(r.phase, 'Progressing');
    assert.equal(r.requeueAfterMs, 10_000);
    // The controller schedules the next step at decidedAt + requeueAfterMs, however long the writes took.
    assert.equal(r.decidedAt, decidedFor);
    assert.equal(r.written?.metadata?.resourceVersion, w.stable.metadata!.resourceVersion, 'the API answer of the status commit (for the informer cache)');
    assert.equal(r.wroteResourceVersion, w.stable.metadata!.resourceVersion);
  });

  it('pause holds the weight over several intervals (no gates, no timer); resume goes on to promotion', async () => {
    const { w, clock, metrics } = await releaseAt(25);
    const prom = new ProgressorMetrics(false);
    w.annotate(ANN_REQUEST, 'pause');
    const paused = await once(w, clock, metrics, prom);
    assert.equal(paused.phase, 'Paused');
    assert.equal(paused.requeueAfterMs, undefined, 'no timer while paused');
    assert.equal(w.stable.metadata!.annotations![ANN_REQUEST], undefined, 'the request is removed');
    assert.ok(w.events.includes('Release of review.test paused by request at canary weight 25'), w.events.join('\n'));
    assert.match(await prom.registry.metrics(), /kube_canary_release_phase\{namespace="test",name="review",phase="Paused"\} 1/);

    const checks = metrics.calls;
    const events = w.events.length;
    // Five wake-ups (resyncs, unrelated watch events) spread over 30 intervals, well past the 60 s progress deadline.
    for (let i = 0; i < 5; i++) {
      clock.now += 60_000;
      const r = await once(w, clock, metrics);
      assert.equal(r.phase, 'Paused');
      assert.deepEqual(w.routes, { stable: 75, canary: 25 }, 'the weight is held');
    }
    assert.equal(metrics.calls, checks, 'no gate ran while paused');
    assert.equal(w.events.length, events, 'nothing happened while paused');
    assert.equal(statusOf(w)!.weight, 25);

    w.annotate(ANN_REQUEST, 'resume');
    const resumed = await once(w, clock, metrics);
    assert.equal(resumed.phase, 'Progressing');
    assert.equal(resumed.requeueAfterMs, 10_000, 'the next check one interval after resuming');
    assert.equal(w.stable.metadata!.annotations![ANN_REQUEST], undefined);
    assert.deepEqual(w.routes, { stable: 75, canary: 25 });
    clock.now += 10_000;
    await drive(w, clock, { metrics });
    w.settle();
    assert.equal(w.stable.spec!.template.spec!.containers[0]!.image, 'review:1.8.0');
    assert.deepEqual(w.routes, { stable: 100, canary: 0 });
    assert.equal(w.canary, undefined);
    const story = w.events.filter((e) => !e.startsWith('Waiting'));
    assert.deepEqual(story.slice(1), [
      'Advance review.test canary weight 25',
      'Release of review.test paused by request at canary weight 25',
      'Release of review.test resumed by request at canary weight 25: next check in 10s',
      'Advance review.test canary weight 50',
      `Promoting revision ${statusOf(w)!.revision} into review.test`,
      'Routing all traffic to review.test',
      'Promotion completed! Scaling down review-canary.test',
    ]);
  });

  it('promote mid-analysis skips the remaining steps and promotes as usual', async () => {
    const { w, clock, metrics } = await releaseAt(25);
    const checks = metrics.calls;
    w.annotate(ANN_REQUEST, 'promote');
    await drive(w, clock, { metrics });
    w.settle();
    assert.equal(metrics.calls, checks, 'no further checks');
    assert.equal(w.stable.spec!.template.spec!.containers[0]!.image, 'review:1.8.0');
    assert.equal(w.stable.spec!.paused, false);
    assert.deepEqual(w.routes, { stable: 100, canary: 0 });
    assert.equal(w.canary, undefined);
    assert.equal(w.stable.metadata!.annotations![ANN_REQUEST], undefined);
    assert.ok(!w.events.includes('Advance review.test canary weight 50'));
    assert.ok(w.events.includes('Promotion of review.test requested: skipping the remaining analysis'));
    assert.equal(w.statusWrites.filter((p) => p === 'Promoting').length, 1);
    assert.equal(statusOf(w)!.phase, 'Succeeded');
  });

  it('abort mid-analysis rolls back: Failed, failed revision recorded, stable pods untouched; retry clears it', async () => {
    const { w, clock, metrics } = await releaseAt(25);
    const stableRs = structuredClone(w.replicaSets);
    const rev = statusOf(w)!.revision;
    w.annotate(ANN_REQUEST, 'abort');
    await drive(w, clock, { metrics });
    w.settle();
    const s = statusOf(w)!;
    assert.equal(s.phase, 'Failed');
    assert.equal(s.message, 'Rolling back review.test: aborted by request');
    assert.equal(w.stable.metadata!.annotations![ANN_FAILED_REVISION], rev);
    assert.equal(w.stable.metadata!.annotations![ANN_REQUEST], undefined);
    assert.equal(w.stable.spec!.template.spec!.containers[0]!.image, 'review:1.7.0');
    assert.equal(w.replicaSets.length, stableRs.length, 'no new ReplicaSet: no pod churn');
    assert.deepEqual(w.replicaSets.map((r) => r.status?.replicas), stableRs.map((r) => r.status?.replicas));
    assert.deepEqual(w.routes, { stable: 100, canary: 0 });
    assert.equal(w.canary, undefined);
    assert.ok(w.events.includes('Release of review.test aborted by request at canary weight 25: rolling back'));
    assert.ok(w.events.includes('Canary failed! Scaling down review-canary.test'));

    w.annotate(ANN_REQUEST, 'retry');
    await once(w, clock, metrics);
    assert.equal(w.stable.metadata!.annotations![ANN_FAILED_REVISION], undefined);
    assert.equal(w.stable.metadata!.annotations![ANN_REQUEST], undefined);
    assert.equal(w.events.at(-1), `Revision ${rev} of review.test may be shipped again`);
    assert.equal(statusOf(w)!.phase, 'Failed', 'the last release is still described');
  });

  it('a request that does not apply is removed with a Warning, never left lying around', async () => {
    const w = new World(ANALYSIS);
    const clock = { now: T };
    w.annotate(ANN_REQUEST, 'promote');
    await once(w, clock);
    assert.equal(w.stable.metadata!.annotations![ANN_REQUEST], undefined);
    assert.deepEqual(w.events, ['Request "promote" on review.test ignored: no release of review.test is in progress']);
  });

  it('a crash before the commit leaves the request in place; it is then acted on exactly once', async () => {
    const { w, clock, metrics } = await releaseAt(25);
    w.annotate(ANN_REQUEST, 'pause');
    w.crashAt = w.writes + 1; // the guarded patch is this reconcile's only write
    await assert.rejects(once(w, clock, metrics), Crash);
    assert.equal(w.stable.metadata!.annotations![ANN_REQUEST], 'pause', 'not committed, so not consumed');
    assert.equal(statusOf(w)!.phase, 'Progressing');
    assert.ok(!w.events.some((e) => /paused by request/.test(e)), 'no Event for a transition that did not happen');
    const r = await once(w, clock, metrics);
    assert.equal(r.phase, 'Paused');
    await once(w, clock, metrics);
    assert.equal(w.events.filter((e) => /paused by request/.test(e)).length, 1);
    assert.equal(w.statusWrites.filter((p) => p === 'Paused').length, 1);
  });

  it('abort with a crash before any single write of it: rolled back once, nothing left on the canary', async () => {
    const base = await releaseAt(25);
    const start = base.w.writes;
    base.w.annotate(ANN_REQUEST, 'abort');
    await drive(base.w, base.clock, { metrics: base.metrics });
    const total = base.w.writes - start;
    assert.ok(total >= 3, `an abort makes several writes (${total})`);
    for (let k = 1; k <= total; k++) {
      const { w, clock, metrics } = await releaseAt(25);
      w.annotate(ANN_REQUEST, 'abort');
      w.crashAt = w.writes + k;
      const { crashes } = await drive(w, clock, { metrics });
      w.settle();
      assert.equal(crashes, 1, `crash ${k} happened`);
      assert.equal(w.stable.spec!.template.spec!.containers[0]!.image, 'review:1.7.0', `crash ${k}: image`);
      assert.deepEqual(w.routes, { stable: 100, canary: 0 }, `crash ${k}: routes`);
      assert.equal(w.canary, undefined, `crash ${k}: canary`);
      assert.equal(w.stable.metadata!.annotations![ANN_REQUEST], undefined, `crash ${k}: request left`);
      assert.ok(w.stable.metadata!.annotations![ANN_FAILED_REVISION], `crash ${k}: failed revision`);
      assert.equal(w.statusWrites.filter((p) => p === 'RollingBack').length, 1, `crash ${k}: aborted once`);
      assert.equal(w.statusWrites.filter((p) => p === 'Failed').length, 1, `crash ${k}: failed once`);
      assert.equal(w.events.filter((e) => /aborted by request/.test(e)).length, 1, `crash ${k}: one abort Event`);
    }
  });
});

describe('progressor reconciler: the Service deleted mid-release (in-memory world)', () => {
  const T = Date.parse('2026-01-01T00:00:00Z');
  const statusOf = (w: World) => parseStatus(w.stable.metadata!.annotations![ANN_STATUS])!;
  const once = (w: World, clock: { now: number }, metrics: StubMetrics, r = reconcilerFor(w, clock, metrics)) => {
    w.settle();
    return r.reconcile(structuredClone(w.stable));
  };
  /** Ship 1.8.0 and run until the canary carries 25 %, the next check due. */
  async function at25(metrics: StubMetrics) {
    const w = new World(ANALYSIS);
    const clock = { now: T };
    w.capture('review:1.8.0');
    for (let i = 0; i < 20 && w.routes?.canary !== 25; i++) clock.now += (await once(w, clock, metrics)).requeueAfterMs ?? 1000;
    assert.equal(w.routes?.canary, 25);
    clock.now += 10_000;
    return { w, clock };
  }
  const held = /^Release blocked, retrying: Service review not found in test: kube-canary routes its host, so the release of review holds at canary weight 25 \(no step, no check counted\) until it exists again; create it again, or abort the release/;

  it('holds the release (ReconcileError naming the Service): no failed check or rollback on failing checks; created again, it goes on and promotes', async () => {
    const metrics = new StubMetrics();
    const { w, clock } = await at25(metrics);
    const before = statusOf(w);
    const said = w.events.length;
    w.services = [];
    // Failing checks (no data: nothing reaches the canary) count nothing, however many intervals.
    const r = reconcilerFor(w, clock, metrics);
    metrics.pass = false;
    for (let i = 0; i < 4; i++) {
      await assert.rejects(once(w, clock, metrics, r), /Service review not found in test/);
      clock.now += 10_000;
    }
    assert.deepEqual(w.routes, { stable: 75, canary: 25 }, 'the weight is held');
    assert.deepEqual(statusOf(w), before, 'nothing committed: no step, no failed check');
    assert.equal(w.stable.metadata!.annotations![ANN_FAILED_REVISION], undefined);
    assert.deepEqual(w.events.slice(said).map((e) => held.test(e)), [true], 'said once, and nothing else');

    // Created again: a failing check over a window that saw it missing is not judged; the next
    // one, a whole window later, is.
    w.services = ['review'];
    w.serviceCreated = new Date(clock.now - 2000).toISOString();
    const calls = metrics.calls;
    const deferred = await once(w, clock, metrics);
    assert.equal(deferred.requeueAfterMs, 8000, 'due when its window (10 s) is all after the creation');
    assert.deepEqual(statusOf(w), before);
    clock.now += deferred.requeueAfterMs!;
    metrics.pass = true;
    await once(w, clock, metrics);
    assert.equal(metrics.calls, calls + 2, 'checked afresh, not with the deferred answer');
    assert.deepEqual(w.routes, { stable: 50, canary: 50 });
    await drive(w, clock, { metrics });
    assert.equal(statusOf(w).phase, 'Succeeded');
    assert.equal(statusOf(w).failedChecks, 0);
  });

  it('a step on passing checks does not read the Service (one GET per step for 500 releases doubled their step lag); a failing check does', async () => {
    const metrics = new StubMetrics();
    const { w, clock } = await at25(metrics);
    const reads = w.serviceReads;
    await once(w, clock, metrics);
    assert.deepEqual(w.routes, { stable: 50, canary: 50 });
    assert.equal(w.serviceReads, reads, 'no GET for a step on passing checks');
    clock.now += 10_000;
    metrics.pass = false;
    await once(w, clock, metrics);
    assert.equal(w.serviceReads, reads + 1, 'a failing check is counted only with the Service there');
    assert.equal(statusOf(w).failedChecks, 1);
  });

  it('a release held for its Service can be aborted: all traffic back on stable, no Service needed', async () => {
    const metrics = new StubMetrics();
    const { w, clock } = await at25(metrics);
    w.services = [];
    metrics.pass = false; // no data: nothing reaches the canary
    await assert.rejects(once(w, clock, metrics), /Service review not found/);
    w.annotate('kube-canary.io/request', 'abort');
    await drive(w, clock, { metrics });
    assert.equal(statusOf(w).phase, 'Failed');
    assert.deepEqual(w.routes, { stable: 100, canary: 0 });
  });

  it('a promotion under way is not held: it sends the canary no more traffic and ends with all of it on stable', async () => {
    const metrics = new StubMetrics();
    const { w, clock } = await at25(metrics);
    for (let i = 0; i < 5 && statusOf(w).phase !== 'Promoting'; i++) clock.now += (await once(w, clock, metrics)).requeueAfterMs ?? 1000;
    assert.equal(statusOf(w).phase, 'Promoting');
    w.services = [];
    await drive(w, clock, { metrics });
    assert.equal(statusOf(w).phase, 'Succeeded');
    assert.deepEqual(w.routes, { stable: 100, canary: 0 });
    assert.equal(w.stable.spec!.template.spec!.containers[0]!.image, 'review:1.8.0');
  });
});

describe('progressor reconciler: gates that take long (in-memory world)', () => {

  /** Metric checks that answer at once, or, while `hold` is set, only when `answer()` is called. */
  class HeldMetrics implements MetricProvider {
    hold = false;
    calls = 0;
    readonly waiting: Array<{ signal?: AbortSignal; answer: () => void }> = [];
    async check(m: { name: string }, _t: unknown, signal?: AbortSignal): Promise<CheckResult> {
      this.calls += 1;
      const r = { name: m.name, passed: true, value: 100, min: 99, message: `${m.name} 100` };
      if (!this.hold) return r;
      return new Promise((resolve) => this.waiting.push({ ...(signal ? { signal } : {}), answer: () => resolve(r) }));
    }
  }

  async function at25(gateSlots?: GateSlots) {
    const metrics = new HeldMetrics();
    return { ...(await shippedTo25(ANALYSIS, metrics, new StubWebhooks(), gateSlots ? { gateSlots } : {})), metrics };
  }

  it('a check slower than the inline wait leaves the reconcile slot; its answer wakes the release, which then steps with it, due from when the check fell due', async () => {
    const { w, clock, metrics, woken, once } = await at25();
    metrics.hold = true;
    const due = clock.now;
    const status = w.stable.metadata!.annotations![ANN_STATUS];
    const calls = metrics.calls;
    // Returns although the check has not answered (it never would, if it waited for this one).
    undecided(await once());
    undecided(await once(), 'a reconcile meanwhile (watch event, resync) waits for nothing');
    assert.equal(metrics.calls, calls + 1, 'one run, not one per reconcile');
    assert.equal(w.stable.metadata!.annotations![ANN_STATUS], status, 'nothing decided, nothing written');
    assert.equal(w.routes?.canary, 25);
    assert.deepEqual(woken, []);

    clock.now += 4_000;
    metrics.waiting[0]!.answer();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(woken, ['test/review']);
    const r = await once();
    assert.equal(w.routes?.canary, 50);
    assert.equal(metrics.calls, calls + 1);
    assert.equal(r.decidedAt, due, 'the next step is an interval after the check fell due, not after it answered');
    assert.equal(r.requeueAfterMs, 10_000);
  });

  it('a commit lost to a conflict is decided again with the answer it had: the checks are not run again', async () => {
    const { w, metrics, once, r } = await at25();
    const calls = metrics.calls;
    w.settle();
    const stale = structuredClone(w.stable);
    w.annotate('someone', 'else');
    // The stale view: the checks run, then the commit fails on the generation guard.
    await assert.rejects(r.reconcile(stale), StaleError);
    assert.equal(metrics.calls, calls + 1);
    assert.equal(parseStatus(w.stable.metadata!.annotations![ANN_STATUS])?.weight, 25, 'nothing committed');
    // The retry from the fresh view (same release state: the stored status did not change).
    await once();
    assert.equal(metrics.calls, calls + 1, 'the checks ran once for this step');
    assert.equal(parseStatus(w.stable.metadata!.annotations![ANN_STATUS])?.weight, 50);
    assert.equal(w.routes?.canary, 50);
  });

  it('a new revision while a check runs aborts that check; its late answer is not used and wakes nobody', async () => {
    const { w, metrics, woken, once } = await at25();
    metrics.hold = true;
    undecided(await once());
    const first = metrics.waiting[0]!;
    w.capture('review:1.9.0');
    await once();
    assert.equal(first.signal?.aborted, true);
    first.answer();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(woken, []);
    assert.match(w.events.join('\n'), /analysis restarts/);
  });

  it("releases share the process's gate slots: with one, a second release's check does not start until the first's answers; meanwhile it decides nothing, then steps when its own answers", async () => {
    const slots = new GateSlots(1);
    const first = await at25(slots);
    const second = await at25(slots);
    first.metrics.hold = true;
    second.metrics.hold = true;
    undecided(await first.once());
    const calls = second.metrics.calls;
    undecided(await second.once());
    assert.equal(second.metrics.calls, calls, 'not started: it waits for the slot');
    assert.equal(second.w.routes?.canary, 25);

    first.metrics.waiting[0]!.answer();
    await new Promise((r) => setImmediate(r));
    assert.equal(second.metrics.calls, calls + 1);
    second.metrics.waiting[0]!.answer();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(second.woken, ['test/review']);
    await second.once();
    assert.equal(second.w.routes?.canary, 50);
  });
});

describe('progressor reconciler: the analysis edited while its checks run (in-memory world)', () => {
  const HOOK = { name: 'load-test', type: 'rollout', url: 'http://load.test/', timeout: '10m' };
  const WITH_HOOK = { ...ANALYSIS, webhooks: [HOOK] };

  /** Webhooks that never answer (until their signal aborts them). */
  class Hanging implements GateRunner {
    readonly calls: AbortSignal[] = [];
    async run(_g: unknown, _p: WebhookPayload, signal?: AbortSignal): Promise<CheckResult> {
      this.calls.push(signal!);
      return new Promise((_resolve, reject) => signal!.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
    }
  }

  async function hangingAt25() {
    const hooks = new Hanging();
    const { w, clock, woken, once } = await shippedTo25(WITH_HOOK, new StubMetrics(), hooks);
    await once(); // the check falls due: the hook is called and hangs
    assert.equal(hooks.calls.length, 1);
    return { w, clock, hooks, woken, once };
  }

  it('a hanging hook removed from the analysis: its run is abandoned (aborted) and the next check, at once, runs the edited analysis (its metric)', async () => {
    const { w, hooks, woken, once } = await hangingAt25();
    w.annotate('kube-canary.io/analysis', JSON.stringify(ANALYSIS));
    await once();
    assert.equal(hooks.calls[0]!.aborted, true, 'the run of the old analysis is aborted');
    assert.equal(w.routes?.canary, 50, 'stepped on: the metric of the edited analysis passed');
    assert.equal(parseStatus(w.stable.metadata!.annotations![ANN_STATUS])?.weight, 50);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(woken, [], 'the abandoned run wakes nobody');
  });

  it("a hook's timeout edited: the old run is abandoned and one run of the new configuration starts, once however often the release is reconciled", async () => {
    const { w, hooks, once } = await hangingAt25();
    w.annotate('kube-canary.io/analysis', JSON.stringify({ ...WITH_HOOK, webhooks: [{ ...HOOK, timeout: '30s' }] }));
    undecided(await once());
    undecided(await once());
    assert.equal(hooks.calls.length, 2, 'one new run, not one per reconcile');
    assert.deepEqual(hooks.calls.map((s) => s.aborted), [true, false]);
    assert.equal(w.routes?.canary, 25);
  });

  it('an edit that leaves the checks as they were (the steps, the threshold, an event hook) keeps the run in flight', async () => {
    const { w, hooks, once } = await hangingAt25();
    w.annotate('kube-canary.io/analysis', JSON.stringify({ ...WITH_HOOK, stepWeight: 10, threshold: 3, webhooks: [HOOK, { name: 'slack', type: 'event', url: 'http://notify.test/' }] }));
    undecided(await once());
    assert.equal(hooks.calls.length, 1);
    assert.equal(hooks.calls[0]!.aborted, false);
  });
});

describe('progressor reconciler: gates that run long are said (in-memory world)', () => {
  const T = Date.parse('2026-01-01T00:00:00Z');
  const HOOK = { name: 'load-test', type: 'rollout', url: 'http://load.test/', timeout: '10m' };

  /** Webhooks that never answer until `answer()` (or their signal aborts them). */
  class Held implements GateRunner {
    readonly calls: Array<{ signal: AbortSignal; answer: () => void }> = [];
    async run(g: { name: string }, _p: WebhookPayload, signal?: AbortSignal): Promise<CheckResult> {
      return new Promise((resolve, reject) => {
        this.calls.push({ signal: signal!, answer: () => resolve({ name: g.name, passed: true, message: 'ok' }) });
        signal!.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
      });
    }
  }

  async function heldAt25(gateSlots?: GateSlots) {
    const hooks = new Held();
    let hold = false;
    const gate = { run: (g: { name: string }, p: WebhookPayload, s?: AbortSignal) => (hold ? hooks.run(g, p, s) : Promise.resolve({ name: g.name, passed: true, message: 'ok' })) };
    const { w, clock, woken, once } = await shippedTo25({ ...ANALYSIS, webhooks: [HOOK] }, new StubMetrics(), gate, gateSlots ? { gateSlots } : {});
    hold = true;
    return { w, clock, hooks, woken, once };
  }

  const message = (w: World) => parseStatus(w.stable.metadata!.annotations![ANN_STATUS])!.message;

  it('once a check is an interval and 5 s overdue, the status names the hook still running, since when and its timeout, written once, with one Warning; said again after 30 minutes; the run goes on', async () => {
    const { w, clock, hooks, woken, once } = await heldAt25();
    const due = clock.now;
    const r1 = await once();
    undecided(r1);
    assert.equal(r1.requeueAfterMs, 15_000, 'looked at again when it would be slow: the 10 s interval and 5 s');
    assert.match(message(w), /^Advance review\.test canary weight 25$/);
    const events = w.events.length;

    clock.now += 15_000;
    const r2 = await once();
    const said = `Waiting for the analysis checks of review.test at canary weight 25, running since ${new Date(due).toISOString()}: no answer yet from webhook load-test (timeout 10m)`;
    assert.equal(message(w), said);
    assert.deepEqual(w.events.slice(events), [said]);
    assert.ok(r2.wroteResourceVersion, 'the write is reported (its own watch event needs no reconcile)');
    const status = parseStatus(w.stable.metadata!.annotations![ANN_STATUS])!;
    assert.equal(status.phase, 'Progressing');
    assert.equal(status.weight, 25);
    assert.equal(hooks.calls.length, 1);
    assert.equal(hooks.calls[0]!.signal.aborted, false, 'saying the hold does not abandon the run it is about');

    // Reconciles meanwhile (watch events, resyncs) write and say nothing more.
    const writes = w.writes;
    clock.now += 60_000;
    await once();
    await once();
    assert.equal(w.writes, writes);
    assert.equal(w.events.length, events + 1);
    assert.equal(hooks.calls.length, 1);

    // Still hanging 30 minutes after it was said: said again (the apiserver drops Events after an hour), not written again.
    clock.now += HOLD_REPEAT_MS;
    await once();
    assert.deepEqual(w.events.slice(events), [said, said]);
    assert.equal(w.writes, writes);

    hooks.calls[0]!.answer();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(woken, ['test/review']);
    await once();
    assert.equal(w.routes?.canary, 50);
    assert.equal(message(w), 'Advance review.test canary weight 50');
  });

  it('a check that waits for a gate slot (--gate-concurrency) that long says so', async () => {
    const slots = new GateSlots(1);
    const first = await heldAt25(slots);
    const second = await heldAt25(slots);
    const due = second.clock.now;
    undecided(await first.once());
    undecided(await second.once());
    second.clock.now += 15_000;
    await second.once();
    assert.equal(message(second.w), `Waiting for the analysis checks of review.test at canary weight 25: queued since ${new Date(due).toISOString()} for one of the progressor's --gate-concurrency slots, all taken by other checks`);
    assert.equal(second.w.events.at(-1), message(second.w));
  });

  it('a new revision whose first gate hangs (confirm-rollout) is said in an Event; the status of the release before it is left alone', async () => {
    const w = new World({ ...ANALYSIS, webhooks: [{ name: 'approve', type: 'confirm-rollout', url: 'http://approve.test/', timeout: '1m' }] });
    const clock = { now: T };
    const hooks = new Held();
    const r = reconcilerFor(w, clock, new StubMetrics(), new ProgressorMetrics(false), hooks as never, { gateInlineMs: 20 });
    w.capture('review:1.8.0');
    w.settle();
    undecided(await r.reconcile(structuredClone(w.stable)));
    clock.now += 15_000;
    undecided(await r.reconcile(structuredClone(w.stable)));
    assert.equal(w.stable.metadata!.annotations![ANN_STATUS], undefined, 'no status written');
    assert.deepEqual(w.events, [`Waiting for the confirm-rollout checks of review.test, running since ${new Date(T).toISOString()}: no answer yet from webhook approve (timeout 1m)`]);
    assert.equal(hooks.calls[0]!.signal.aborted, false);
  });
});

describe('progressor reconciler: routes outside a release (in-memory world)', () => {
  it('a Deployment that inherited canary weights (deleted mid-release and created again while no progressor ran) is set back to all stable, once, with a Warning', async () => {
    const w = new World(ANALYSIS);
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    w.routes = { stable: 70, canary: 30 };
    const r = reconcilerFor(w, clock);
    await r.reconcile(structuredClone(w.stable));
    assert.deepEqual(w.routes, { stable: 100, canary: 0 });
    assert.equal(w.events.length, 1);
    assert.match(w.events[0]!, /The traffic routes of review\.test sent 30% to the canary with no release in progress .*all traffic set to stable/);
    assert.equal(w.stable.metadata!.annotations![ANN_STATUS], undefined, 'no release status invented');

    // Looked at once per Deployment object: an idle reconcile does not read routes every time.
    w.routes = { stable: 90, canary: 10 };
    await r.reconcile(structuredClone(w.stable));
    assert.deepEqual(w.routes, { stable: 90, canary: 10 });
    // The same name created again is another object: looked at again.
    w.stable.metadata!.uid = 'uid-successor';
    await r.reconcile(structuredClone(w.stable));
    assert.deepEqual(w.routes, { stable: 100, canary: 0 });
  });

  it("leaves alone the routes of a Service that another Deployment's release routes now (two Deployments behind one Service): idle, deleted or not", async () => {
    const w = new World(ANALYSIS);
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    w.routes = { stable: 70, canary: 30 };
    const r = reconcilerFor(w, clock, undefined, undefined, undefined, { routeHolder: () => 'web-a' });
    await r.reconcile(structuredClone(w.stable));
    await r.releaseGone(structuredClone(w.stable));
    assert.deepEqual(w.routes, { stable: 70, canary: 30 });
    assert.deepEqual(w.events, []);
  });

  it('routes that cannot be read outside a release (no Istio CRDs in the cluster) are no error', async () => {
    const w = new World(ANALYSIS);
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    w.provider.getRoutes = async () => {
      throw apiError(404, 'the server could not find the requested resource');
    };
    await reconcilerFor(w, clock).reconcile(structuredClone(w.stable));
    assert.deepEqual(w.events, []);
  });

  it('all stable already: nothing written, nothing said', async () => {
    const w = new World(ANALYSIS);
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    w.routes = { stable: 100, canary: 0 };
    const writes = w.writes;
    await reconcilerFor(w, clock).reconcile(structuredClone(w.stable));
    assert.equal(w.writes, writes);
    assert.deepEqual(w.events, []);
  });
});

describe('progressor reconciler: event webhooks (in-memory world)', () => {
  it("gets every Event recorded, with Flagger's metadata (eventMessage, eventType, timestamp) over the hook's own", async () => {
    class Recording implements GateRunner {
      readonly calls: Array<{ hook: string; payload: WebhookPayload }> = [];
      async run(g: { name: string }, payload: WebhookPayload): Promise<CheckResult> {
        this.calls.push({ hook: g.name, payload });
        return { name: g.name, passed: true, message: 'ok' };
      }
    }
    const analysis = { ...ANALYSIS, webhooks: [{ name: 'slack', type: 'event', url: 'http://notify.test/', metadata: { channel: 'releases', eventType: 'mine' } }] };
    const w = new World(analysis);
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const hooks = new Recording();
    w.capture('review:1.8.0');
    for (let round = 0; round < 40 && w.stable.metadata!.annotations![ANN_REVISION]; round++) {
      w.settle();
      const r = reconcilerFor(w, clock, new StubMetrics(), new ProgressorMetrics(false), hooks as never);
      clock.now += Math.max((await r.reconcile(structuredClone(w.stable))).requeueAfterMs ?? 1000, 1);
    }
    await new Promise((r) => setImmediate(r));
    const sent = hooks.calls.filter((c) => c.hook === 'slack').map((c) => c.payload);
    assert.deepEqual(sent.map((p) => p.metadata['eventMessage']), w.events, 'one call per Event, in order');
    for (const p of sent) {
      assert.equal(p.metadata['eventType'], 'Normal');
      assert.equal(p.metadata['channel'], 'releases', "the hook's own metadata is kept");
      assert.match(p.metadata['timestamp']!, /^\d{13}$/);
      assert.equal(p.name, 'review');
    }
    assert.ok(sent.some((p) => p.phase === 'Succeeded'));
  });

  it('gets the Warning that says what blocks a release (ReconcileError) too', async () => {
    const calls: WebhookPayload[] = [];
    const hooks = { run: async (g: { name: string }, payload: WebhookPayload) => (calls.push(payload), { name: g.name, passed: true, message: 'ok' }) };
    const w = new World({ ...ANALYSIS, webhooks: [{ name: 'slack', type: 'event', url: 'http://notify.test/' }] });
    w.services = [];
    w.capture('review:1.8.0');
    await assert.rejects(reconcilerFor(w, { now: Date.parse('2026-01-01T00:00:00Z') }, new StubMetrics(), new ProgressorMetrics(false), hooks as never).reconcile(structuredClone(w.stable)), /Service review not found/);
    await new Promise((r) => setImmediate(r));
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.metadata['eventType'], 'Warning');
    assert.match(calls[0]!.metadata['eventMessage']!, /^Release blocked, retrying: Service review not found in test/);
  });
});
