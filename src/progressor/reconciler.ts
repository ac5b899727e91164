/**
 * The thin, impure shell around step(): observe -> step (answering its Needs) -> perform.
 *
 * Order of effects, chosen so a crash between any two leaves something step() can finish:
 *   1. routes, canary create/update/delete (idempotent, re-derived from the status next time);
 *   2. one JSON patch of the stable Deployment (unpause, template restore, annotations, status)
 *      guarded by the observed uid and generation (stable-patch.ts): the commit point of the transition. A writer
 *      with a stale view (another replica, a lost lease) fails here and changes no state;
 *   3. Events and notification webhooks, only after the commit, so they describe what happened.
 * Before every write it asks `mayAct()` (leadership): a replica that lost its lease stops at once.
 */
import type { V1Deployment, V1PodTemplateSpec, V1Service } from '@kubernetes/client-node';
import type { Analysis } from '../config/analysis.js';
import { ANN_REQUEST, ANN_STATUS, LABEL_ROLE, LABEL_STABLE_NAME, ROLE_CANARY, canaryName } from '../config/contract.js';
import type { ClusterDefaults } from '../config/release-config.js';
import { type Phase, isTerminal } from '../config/status.js';
import { formatDuration } from '../config/duration.js';
import { canonicalJson, templateHash } from '../config/template-hash.js';
import type { Kube } from '../kube/client.js';
import { isConflict, isNotFound, errorMessage } from '../kube/errors.js';
import type { EventRecorder } from '../kube/events.js';
import type { Logger } from '../kube/logger.js';
import type { RouteTarget, TrafficProvider } from '../traffic/provider.js';
import { buildCanary, canarySelector } from './canary.js';
import { type GateContext, type GateDeps, notify, runGates } from './gates.js';
import { DEFAULT_GATE_CONCURRENCY, GateRuns, GateSlots, type RunProgress } from './gate-runs.js';
import type { ProgressorMetrics } from './metrics.js';
import { canaryView, stableView } from './observe.js';
import { buildStablePatch, isStablePatchAction } from './stable-patch.js';
import { HOLD_REPEAT_MS, step } from './step.js';
import type { Decision, GateKind, GateOutcome, NotifyType, Observation, PendingCheck, StableView } from './types.js';

export interface ReconcilerDeps {
  kube: Pick<Kube, 'createDeployment' | 'patchDeployment' | 'deleteDeployment' | 'getDeployment' | 'listReplicaSets' | 'getService'>;
  providers: { get(name: string): TrafficProvider };
  gates: GateDeps;
  events: EventRecorder;
  metrics: ProgressorMetrics;
  log: Logger;
  trackLabel: string;
  defaults: ClusterDefaults;
  /** The canary Deployment from the informer cache. */
  canaryOf(namespace: string, stableName: string): V1Deployment | undefined;
  /** False as soon as this replica may no longer write (lease lost, shutting down). */
  mayAct(): boolean;
  now(): number;
  /** The Deployment whose release routes this one's Service, if another (shared-service.ts routeHolder). */
  routeHolder?(stable: V1Deployment): string | undefined;
  /** Reconcile this release (namespace/name) again: a gate run that outlasted its reconcile answered. */
  wake?(key: string): void;
  /** How long a reconcile waits for the gates it starts before leaving them to the background (GATE_INLINE_MS). */
  gateInlineMs?: number;
  /** Bounds the gate runs in flight (--gate-concurrency); one per process, kept across leadership terms. */
  gateSlots?: GateSlots;
}

export class NotLeaderError extends Error {
  constructor() {
    super('not the leader any more; stopping before the next write');
  }
}

export interface ReconcileResult {
  /** Relative to `decidedAt`, not to when the reconcile returned (its writes may have taken a while). */
  requeueAfterMs?: number;
  /** The clock reading the decision was made for (ReconcilerDeps.now()): a step is due at decidedAt + requeueAfterMs. */
  decidedAt?: number;
  phase?: Phase;
  /** resourceVersion of the stable Deployment after our own patch: its watch event needs no reconcile. */
  wroteResourceVersion?: string;
  /** The stable Deployment as our own patch left it (the API's answer), for the informer cache (write-through). */
  written?: V1Deployment;
  /** When a new traffic weight was accepted by the API in this reconcile (for the weight-change lag metric). */
  weightChangedAt?: number;
}

const MAX_PASSES = 8;
/** Most gate sets answer in milliseconds; one that takes longer than this goes on outside the reconcile slot (GateRuns). */
const GATE_INLINE_MS = 1000;

export class Reconciler {
  private readonly gateRuns: GateRuns;

  constructor(private readonly d: ReconcilerDeps) {
    this.gateRuns = new GateRuns({ inlineMs: d.gateInlineMs ?? GATE_INLINE_MS, clock: () => d.now(), onDone: (key) => d.wake?.(key), slots: d.gateSlots ?? new GateSlots(DEFAULT_GATE_CONCURRENCY) });
  }

  /** Last error reported per release, so a retrying failure produces one Event (again after HOLD_REPEAT_MS), not one per retry. */
  private readonly lastError = new Map<string, { msg: string; at: number }>();
  /** The Deployment object (uid) whose routes were looked at outside a release, per release key. */
  private readonly lookedAt = new Map<string, string>();
  /** The last SlowGates Event per release, so a gate set that runs long is said once per distinct reason (again after HOLD_REPEAT_MS). */
  private readonly slowSaid = new Map<string, { msg: string; at: number }>();

  /** The Deployment is gone: nothing more to say about it. */
  forget(namespace: string, name: string): void {
    this.lastError.delete(`${namespace}/${name}`);
    this.slowSaid.delete(`${namespace}/${name}`);
    this.lookedAt.delete(`${namespace}/${name}`);
    this.gateRuns.forget(`${namespace}/${name}`);
  }

  /** One gate set, run once per need (GateRuns): its duration, checks and log line are counted here, not per reconcile that reads the answer. */
  private async runGates(gate: GateKind, analysis: Analysis, c: GateContext, signal: AbortSignal, pending: Set<PendingCheck>, log: Logger): Promise<GateOutcome> {
    const d = this.d;
    const started = Date.now();
    const outcome = await runGates(gate, analysis, c, d.gates, signal, pending);
    if (signal.aborted) return outcome;
    d.metrics.gateDuration.observe({ gate }, (Date.now() - started) / 1000);
    for (const res of outcome.results) d.metrics.checks.inc({ namespace: c.namespace, name: c.name, gate, check: res.name, result: res.passed ? 'pass' : 'fail' });
    log[outcome.passed && !outcome.rollbackRequested ? 'info' : 'warn']({ gate, passed: outcome.passed, rollbackRequested: outcome.rollbackRequested, results: outcome.results.map((x) => ({ name: x.name, passed: x.passed, value: x.value, message: x.message })) }, 'gates ran');
    return outcome;
  }

  /** `optedOut`: the Deployment left kube-canary's scope with a release in progress (see step()). */
  async reconcile(stable: V1Deployment, signal?: AbortSignal, optedOut = false): Promise<ReconcileResult> {
    const key = `${stable.metadata!.namespace}/${stable.metadata!.name}`;
    try {
      const r = await this.reconcileOnce(stable, signal, optedOut);
      this.lastError.delete(key);
      return r;
    } catch (err) {
      if (err instanceof StaleError || err instanceof NotLeaderError || !this.d.mayAct()) throw err;
      // Tell the person running `kubectl describe deployment` what blocks the release (a
      // VirtualService we refuse to touch, RBAC, a name clash): once per distinct problem, and
      // again while it lasts.
      const msg = `Release blocked, retrying: ${errorMessage(err)}`;
      const last = this.lastError.get(key);
      const now = this.d.now();
      if (last?.msg !== msg || now - last.at >= HOLD_REPEAT_MS) {
        this.lastError.set(key, { msg, at: now });
        const st = stableView(stable, this.d.trackLabel, this.d.defaults);
        const status = st.status;
        this.say(stable, true, 'ReconcileError', msg, st.config.ok ? st.config.value.analysis : undefined, { revision: status?.revision ?? st.revision ?? '', phase: status?.phase ?? '' }, this.d.log);
      }
      throw err;
    }
  }

  private async reconcileOnce(stable: V1Deployment, signal: AbortSignal | undefined, optedOut: boolean): Promise<ReconcileResult> {
    const d = this.d;
    const key = `${stable.metadata!.namespace}/${stable.metadata!.name}`;
    const st = stableView(stable, d.trackLabel, d.defaults);
    if (optedOut) st.optedOut = true;
    const log = d.log.child({ namespace: st.namespace, deployment: st.name });
    const canaryObj = this.ownCanary(stable);
    const obs: Observation = { stable: st, ...(canaryObj ? { canary: canaryView(canaryObj, d.trackLabel) } : {}) };
    const cfg = st.config.ok ? st.config.value : undefined;
    const target = this.target(stable, cfg?.service);
    const provider = cfg ? d.providers.get(cfg.provider) : undefined;
    const active = !!st.revision || (st.status && !isTerminal(st.status.phase)) || !!canaryObj;
    // Outside a release the routes are looked at once per Deployment object and process: one
    // deleted mid-release and created again while no progressor ran may have inherited a
    // VirtualService that still sends a share to canary pods that are gone (step(): RoutesRestored).
    const firstLook = this.lookedAt.get(key) !== stable.metadata!.uid;
    if (provider && (active || firstLook)) {
      // Another release routing the same Service: its routes are not this one's to set (step()).
      const holder = d.routeHolder?.(stable);
      if (holder) obs.routeHolder = holder;
      try {
        const routes = await provider.getRoutes(target);
        if (routes) obs.routes = routes;
      } catch (err) {
        // Best effort when idle: a cluster without the provider's CRDs has no routes to look at.
        if (active) throw err;
        log.debug({ err: errorMessage(err) }, 'routes of an idle Deployment not readable');
      }
    }

    let stableTemplate: V1PodTemplateSpec | undefined;
    let decision: Decision | undefined;
    // One clock reading per reconcile: every pass decides for the same instant. An answer kept
    // from an earlier reconcile moves that instant back to when its run was started (when the
    // check fell due), so that slow gates do not push every later step back.
    let now = d.now();
    const state = runState(stable, st, cfg?.analysis);
    this.gateRuns.enter(key, state);
    const used = new Set<string>();
    /** When a failing analysis answer this decision rests on was asked for (a verdict against the canary). */
    let failedAt: number | undefined;
    let judged = false;
    for (let pass = 0; pass < MAX_PASSES && !decision; pass++) {
      const r = step(obs, now);
      if (r.kind === 'decision') {
        decision = r;
      } else if (r.need === 'gates') {
        const need = `${r.gate}|${r.revision}|${r.phase}`;
        const gate = r.gate;
        const ctx = { namespace: st.namespace, name: st.name, revision: r.revision, phase: r.phase };
        // Webhooks may act (a load test, a notification): a replica that lost its lease calls none.
        if (!d.mayAct()) throw new NotLeaderError();
        const answer = await this.gateRuns.get(key, state, need, now, cfg!.analysis.intervalMs, (sig, pending) => this.runGates(gate, cfg!.analysis, ctx, sig, pending, log), signal);
        if (!answer) return this.gatesRunning(stable, st, key, need, gate, cfg!.analysis, target, log);
        used.add(need);
        if (gate === 'analysis') {
          judged = true;
          if (!answer.outcome.passed && !answer.outcome.rollbackRequested) failedAt = answer.requestedAt;
        }
        now = Math.min(now, answer.requestedAt);
        obs.gates = { ...obs.gates, [gate]: answer.outcome };
      } else {
        stableTemplate = await this.findStableTemplate(stable, r.revision);
        obs.stableTemplateFound = !!stableTemplate;
      }
    }
    if (!decision) throw new Error('step() did not decide within its pass limit');

    // A release is held (ReconcileError) while its Service is missing: routes for a host with no
    // Service shift nothing, and a canary that gets no traffic through it fails its checks for
    // no data, which says nothing about the canary. So no failed check (nor a rollback for it),
    // no routes and no first weight are committed then. A step on passing checks is not looked
    // at: they rest on traffic the canary got, and a GET before every step doubled the step lag
    // of 500 releases (bench:progressor); once the data runs out the checks fail and hold it.
    // Routing back to stable (a promotion's end, an abort) needs no Service.
    if (failedAt !== undefined || decision.actions.some((a) => a.type === 'ensureRoutes' || (a.type === 'setWeight' && a.canary > 0 && !judged))) {
      const svc = await this.needService(target, st);
      const window = Math.max(0, ...(cfg?.analysis.metrics.map((m) => m.intervalMs) ?? []));
      const created = Date.parse(String(svc.metadata?.creationTimestamp ?? ''));
      if (failedAt !== undefined && created > failedAt - window) {
        // Created (again) within the window these checks looked at: they measured its absence.
        // Judged afresh once a whole window has passed with it.
        this.gateRuns.forget(key);
        const at = d.now();
        log.info({ service: target.service, createdAt: new Date(created).toISOString() }, 'Service created within the analysis window; checking again once a whole window has passed with it');
        return { requeueAfterMs: Math.max(0, created + window - at), decidedAt: at };
      }
    }

    const effects = { target, provider, stableTemplate, canaryObj, log, analysis: cfg?.analysis, weightChangedAt: undefined as number | undefined };
    const written = await this.perform(stable, decision, effects);
    this.gateRuns.spent(key, used);
    this.lookedAt.set(key, stable.metadata!.uid!);
    this.record(st.namespace, st.name, st.status?.phase, decision, log);
    return {
      ...(decision.requeueAfterMs !== undefined ? { requeueAfterMs: decision.requeueAfterMs, decidedAt: now } : {}),
      ...(decision.status ? { phase: decision.status.phase } : {}),
      ...(written?.metadata?.resourceVersion ? { wroteResourceVersion: written.metadata.resourceVersion, written } : {}),
      ...(effects.weightChangedAt !== undefined ? { weightChangedAt: effects.weightChangedAt } : {}),
    };
  }

  /**
   * The gate set `need` has not answered; its answer wakes the release. Until then nothing is
   * decided, but a set that runs long is not held silently: once it is slowGatesAfterMs past the
   * instant its check fell due, the status message names the checks it waits for (or the slot it
   * waits for), written once per change, and a Warning SlowGates says it once per distinct reason
   * and again every HOLD_REPEAT_MS. Only the message is written: the runs' state (runState) ignores
   * it, so saying the hold does not abandon the checks it is about.
   */
  private async gatesRunning(stable: V1Deployment, st: StableView, key: string, need: string, gate: GateKind, analysis: Analysis, target: RouteTarget, log: Logger): Promise<ReconcileResult> {
    // GateRuns.get() answered nothing: the run has not answered (nor failed).
    const p = this.gateRuns.progress(key, need)!;
    const now = this.d.now();
    const left = p.requestedAt + slowGatesAfterMs(analysis.intervalMs) - now;
    if (left > 0) {
      log.debug({ gate }, p.waiting ? 'gates waiting for a slot (--gate-concurrency); deciding when they answer' : 'gates still running; deciding when they answer');
      return { requeueAfterMs: left, decidedAt: now };
    }
    // Only a status of this release is written to (a new revision's is committed with its first decision).
    const own = st.status && st.status.revision === st.revision && !isTerminal(st.status.phase) ? st.status : undefined;
    const msg = slowGatesMessage(`${st.name}.${st.namespace}`, gate, p, own?.weight);
    const last = this.slowSaid.get(key);
    const say = last?.msg !== msg || now - last.at >= HOLD_REPEAT_MS;
    const status = own && own.message !== msg ? { ...own, message: msg } : undefined;
    const repeatIn = say ? HOLD_REPEAT_MS : last!.at + HOLD_REPEAT_MS - now;
    if (!say && !status) return { requeueAfterMs: repeatIn, decidedAt: now };
    const dec: Decision = { actions: [...(status ? [{ type: 'writeStatus' as const, status }] : []), ...(say ? [{ type: 'emitEvent' as const, warning: true, reason: 'SlowGates', message: msg }] : [])], ...(status ? { status } : {}) };
    const written = await this.perform(stable, dec, { target, log, analysis });
    if (say) this.slowSaid.set(key, { msg, at: now });
    log.info({ gate, since: new Date(p.requestedAt).toISOString(), waiting: p.waiting, pending: p.pending.map((c) => c.name) }, 'gates running long; said so');
    return { requeueAfterMs: repeatIn, decidedAt: now, ...(written?.metadata?.resourceVersion ? { wroteResourceVersion: written.metadata.resourceVersion, written } : {}) };
  }

  private async perform(
    stable: V1Deployment,
    dec: Decision,
    x: { target: RouteTarget; provider?: TrafficProvider; stableTemplate?: V1PodTemplateSpec; canaryObj?: V1Deployment; log: Logger; analysis?: Analysis; weightChangedAt?: number },
  ): Promise<V1Deployment | undefined> {
    const d = this.d;
    const ns = stable.metadata!.namespace!;
    const name = stable.metadata!.name!;
    const guard = () => {
      if (!d.mayAct()) throw new NotLeaderError();
    };
    const release = { revision: dec.status?.revision ?? '', phase: dec.status?.phase ?? '' };
    const say = (warning: boolean, reason: string, message: string) => this.say(stable, warning, reason, message, x.analysis, release, x.log);
    for (const a of dec.actions) {
      if (isStablePatchAction(a) || a.type === 'emitEvent' || a.type === 'notify') continue;
      guard();
      switch (a.type) {
        case 'ensureRoutes':
          await this.needProvider(x.provider).reconcile(x.target);
          break;
        case 'setWeight':
          await this.needProvider(x.provider).setRoutes(x.target, 100 - a.canary, a.canary);
          x.weightChangedAt = Date.now();
          break;
        case 'ensureCanary':
          if ((await this.ensureCanary(stable, a.replicas, x.canaryObj)) && a.recreated) say(true, 'CanaryRecreated', a.recreated);
          break;
        case 'deleteCanary':
          await this.deleteCanary(stable, x.canaryObj);
          break;
        default:
          break;
      }
    }
    const ops = buildStablePatch(stable, dec.actions, x.stableTemplate);
    let written: V1Deployment | undefined;
    if (ops.length > 0) {
      guard();
      try {
        written = await d.kube.patchDeployment(ns, name, ops);
      } catch (err) {
        if (isConflict(err)) {
          // Someone wrote the Deployment after we read it (a user, the webhook, another
          // replica): our view is stale, so nothing of this transition is committed. The
          // watch delivers the new version and we decide again from it.
          x.log.info({ err: errorMessage(err) }, 'stable Deployment changed under us; deciding again');
          throw new StaleError();
        }
        throw err;
      }
    }
    for (const a of dec.actions) {
      if (a.type === 'emitEvent') {
        say(a.warning, a.reason, a.message);
      } else if (a.type === 'notify' && x.analysis) {
        this.notify(a.hook, x.analysis, { namespace: ns, name, revision: release.revision, phase: a.phase }, x.log);
      }
    }
    return written;
  }

  /** An Event on the stable Deployment; as in Flagger, every Event recorded goes to the `event` hooks too. */
  private say(stable: V1Deployment, warning: boolean, reason: string, message: string, analysis: Analysis | undefined, release: { revision: string; phase: string }, log: Logger): void {
    const { namespace, name, uid } = stable.metadata as { namespace: string; name: string; uid: string };
    this.d.events.emit({ namespace, name, uid }, warning, reason, message);
    if (analysis?.webhooks.some((w) => w.type === 'event')) this.notify('event', analysis, { namespace, name, ...release }, log, { message, warning, at: Date.now() });
  }

  /** Fire and forget: notification hooks must not hold a release step; their failures are logged. */
  private notify(hook: NotifyType, analysis: Analysis, c: GateContext, log: Logger, event?: { message: string; warning: boolean; at: number }): void {
    notify(hook, analysis, c, this.d.gates, event).then(
      (rs) => rs.filter((r) => !r.passed).forEach((r) => log.warn({ hook, message: r.message }, 'notification webhook failed')),
      () => undefined,
    );
  }

  /**
   * Routes for a host with no Service behind it shift nothing (the canary still gets a share of
   * the traffic through the Service's own selector, outside the release's control): a typo in
   * kube-canary.io/service is said, and the release held, instead of "promoted" without a canary.
   */
  private async needService(t: RouteTarget, st: StableView): Promise<V1Service> {
    try {
      return await this.d.kube.getService(t.namespace, t.service);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const s = st.status;
      const weight = s && s.revision === st.revision && !isTerminal(s.phase) ? s.weight : 0;
      // Once the canary has traffic the webhook refuses another kube-canary.io/service (its old routes would keep that share).
      if (weight > 0) throw new Error(`Service ${t.service} not found in ${t.namespace}: kube-canary routes its host, so the release of ${t.name} holds at canary weight ${weight} (no step, no check counted) until it exists again; create it again, or abort the release with "kubectl canary abort ${t.name} -n ${t.namespace}" (or: kubectl annotate deployment ${t.name} -n ${t.namespace} ${ANN_REQUEST}=abort)`);
      throw new Error(`Service ${t.service} not found in ${t.namespace}: kube-canary routes its host; create it, or set kube-canary.io/service on ${t.name} to the Service in front of it`);
    }
  }

  /**
   * The Deployment of a release was deleted. Garbage collection takes its canary and the routes
   * kube-canary generated, but a VirtualService the user owns would go on sending the canary's
   * share to pods that no longer exist: it is set back to all stable.
   */
  async releaseGone(last: V1Deployment): Promise<void> {
    const d = this.d;
    const st = stableView(last, d.trackLabel, d.defaults);
    if (!st.config.ok) return;
    // Another release routes that Service now: its weights are its own (shared-service.ts).
    if (d.routeHolder?.(last)) return;
    const target = this.target(last, st.config.value.service);
    const provider = d.providers.get(st.config.value.provider);
    try {
      const routes = await provider.getRoutes(target);
      if (!routes || routes.canary === 0) return;
      if (!d.mayAct()) throw new NotLeaderError();
      await provider.setRoutes(target, 100, 0);
      d.log.info({ namespace: st.namespace, deployment: st.name, was: routes }, 'deleted mid-release: its traffic routed back to stable');
    } catch (err) {
      // Generated routes may be going away with the Deployment at the same moment.
      if (!isNotFound(err)) throw err;
    }
  }

  private needProvider(p: TrafficProvider | undefined): TrafficProvider {
    if (!p) throw new Error('no traffic provider for this release (invalid configuration)');
    return p;
  }

  private target(stable: V1Deployment, service: string | undefined): RouteTarget {
    const name = stable.metadata!.name!;
    return {
      namespace: stable.metadata!.namespace!,
      name,
      service: service ?? name,
      trackLabel: this.d.trackLabel,
      owner: { apiVersion: 'apps/v1', kind: 'Deployment', name, uid: stable.metadata!.uid!, controller: false, blockOwnerDeletion: true },
    };
  }

  /** The cached `<name>-canary`, only if it is really ours (a user may own a Deployment of that name). */
  private ownCanary(stable: V1Deployment): V1Deployment | undefined {
    const c = this.d.canaryOf(stable.metadata!.namespace!, stable.metadata!.name!);
    // One being deleted is as good as gone (and must not be patched back to life).
    return c && isOurCanary(c, stable) && !c.metadata?.deletionTimestamp ? c : undefined;
  }

  /** Whether it created the canary (it did not exist). */
  private async ensureCanary(stable: V1Deployment, replicas: number, current: V1Deployment | undefined): Promise<boolean> {
    const ns = stable.metadata!.namespace!;
    const want = buildCanary(stable, this.d.trackLabel, replicas);
    let cur = current;
    if (!cur) {
      try {
        await this.d.kube.createDeployment(ns, want);
        return true;
      } catch (err) {
        if (!isConflict(err)) throw err;
        // Exists but not in our cache yet (or not ours): look at it.
        cur = await this.d.kube.getDeployment(ns, want.metadata!.name!);
        if (!isOurCanary(cur, stable)) throw new Error(`Deployment ${want.metadata!.name} already exists in ${ns} and is not a kube-canary canary of ${stable.metadata!.name}; rename it`);
      }
    }
    if (JSON.stringify(cur.spec?.selector) !== JSON.stringify(canarySelector(stable.spec?.selector, this.d.trackLabel))) {
      // The selector is immutable: replace the canary.
      await this.deleteCanary(stable, cur);
      await this.d.kube.createDeployment(ns, want);
      return false;
    }
    await this.d.kube.patchDeployment(ns, want.metadata!.name!, [
      { op: 'add', path: '/spec/template', value: want.spec!.template },
      { op: 'add', path: '/spec/replicas', value: replicas },
      { op: 'add', path: '/spec/paused', value: false },
      // An orphan taken over (isOurCanary) is owned again, so that it goes with the stable Deployment.
      ...(cur.metadata?.ownerReferences?.length ? [] : [{ op: 'add' as const, path: '/metadata/ownerReferences', value: want.metadata!.ownerReferences }]),
    ]);
    return false;
  }

  private async deleteCanary(stable: V1Deployment, current: V1Deployment | undefined): Promise<void> {
    const ns = stable.metadata!.namespace!;
    const name = canaryName(stable.metadata!.name!);
    let c = current;
    if (!c) {
      try {
        c = await this.d.kube.getDeployment(ns, name);
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      if (!isOurCanary(c, stable)) return;
    }
    try {
      await this.d.kube.deleteDeployment(ns, name, c.metadata?.uid);
    } catch (err) {
      if (!isNotFound(err) && !isConflict(err)) throw err;
    }
  }

  /** The template of the stable Deployment's ReplicaSet that runs `revision` (the paused Deployment keeps running it). */
  private async findStableTemplate(stable: V1Deployment, revision: string): Promise<V1PodTemplateSpec | undefined> {
    const ml = stable.spec?.selector?.matchLabels ?? {};
    const selector = Object.entries(ml).map(([k, v]) => `${k}=${v}`).join(',');
    const list = await this.d.kube.listReplicaSets(stable.metadata!.namespace!, selector);
    const mine = list.items
      .filter((rs) => rs.metadata?.ownerReferences?.some((o) => o.uid === stable.metadata!.uid) && templateHash(rs.spec?.template, this.d.trackLabel) === revision)
      .sort((a, b) => (b.status?.replicas ?? 0) - (a.status?.replicas ?? 0));
    return mine[0]?.spec?.template;
  }

  private record(namespace: string, name: string, before: Phase | undefined, dec: Decision, log: Logger): void {
    const m = this.d.metrics;
    const s = dec.status;
    for (const a of dec.actions) {
      // One line per kube-canary.io/request handled (committed and removed by this reconcile).
      if (a.type === 'clearRequest') log.info({ event: 'request', request: a.request, outcome: a.ignored ? 'ignored' : 'done', ...(a.ignored ? { reason: a.ignored } : {}), from: before ?? null, to: s?.phase ?? null, weight: s?.weight ?? null }, `request ${a.request} ${a.ignored ? 'ignored' : 'done'}`);
    }
    if (!s) return;
    m.setPhase(namespace, name, s.phase);
    m.weight.set({ namespace, name }, s.weight);
    m.failedChecks.set({ namespace, name }, s.failedChecks);
    if (s.phase !== before) {
      log.info({ event: 'transition', from: before ?? null, to: s.phase, revision: s.revision, weight: s.weight, failedChecks: s.failedChecks, message: s.message }, `release ${before ?? 'new'} -> ${s.phase}`);
      if (isTerminal(s.phase) && !s.cancelled) {
        const started = Date.parse(s.startedAt);
        if (Number.isFinite(started)) m.releaseDuration.observe({ outcome: s.phase }, Math.max(0, (this.d.now() - started) / 1000));
        (s.phase === 'Succeeded' ? m.promotions : m.rollbacks).inc({ namespace, name });
      }
    } else if (dec.actions.some((a) => a.type === 'writeStatus')) {
      log.debug({ phase: s.phase, weight: s.weight, failedChecks: s.failedChecks, message: s.message }, 'release status');
    }
  }
}

/**
 * The release state a gate run's answer is for (GateRuns): the Deployment object, its revision,
 * its stored status but for the message (a hold said while the gates run must not abandon them),
 * and the configuration of the checks (interval, metrics, the webhooks that gate). An analysis
 * edited mid-release (a hanging hook removed, a metric's threshold changed) abandons the runs of
 * the old one; the next check runs the new one. Edits of the steps, of `threshold` (failed checks)
 * or of notification hooks keep them.
 */
function runState(stable: V1Deployment, st: StableView, analysis: Analysis | undefined): string {
  let status = stable.metadata!.annotations?.[ANN_STATUS] ?? '';
  if (st.status) {
    const { message: _m, saidAt: _s, ...rest } = st.status;
    status = canonicalJson(rest);
  }
  const checks = analysis ? canonicalJson({ intervalMs: analysis.intervalMs, metrics: analysis.metrics, webhooks: analysis.webhooks.filter((w) => w.type !== 'event' && w.type !== 'post-rollout') }) : '';
  return `${stable.metadata!.uid}|${st.revision ?? ''}|${status}|${checks}`;
}

/**
 * How long after its check fell due a gate set that has not answered is said to hold the release:
 * as long again as the interval (a set that takes about the interval, e.g. a load test, is normal),
 * at most a minute (so a long interval does not hide a hanging hook), and 5 s of slack.
 */
function slowGatesAfterMs(intervalMs: number): number {
  return Math.min(intervalMs, 60_000) + 5_000;
}

function slowGatesMessage(id: string, gate: GateKind, p: RunProgress, weight: number | undefined): string {
  const what = `the ${gate} checks of ${id}${weight !== undefined ? ` at canary weight ${weight}` : ''}`;
  const since = new Date(p.requestedAt).toISOString();
  if (p.waiting) return `Waiting for ${what}: queued since ${since} for one of the progressor's --gate-concurrency slots, all taken by other checks`;
  const checks = p.pending.map((c) => (c.kind === 'webhook' ? `webhook ${c.name} (timeout ${formatDuration(c.timeoutMs)})` : `metric ${c.name}`));
  return `Waiting for ${what}, running since ${since}: ${checks.length ? `no answer yet from ${checks.join(', ')}` : 'no answer yet'}`;
}

export class StaleError extends Error {
  constructor() {
    super('stale view of the stable Deployment');
  }
}

/**
 * Whether `c` is the canary of this stable Deployment: our labels, and owned by it, or by nobody.
 * A canary loses its owner when the stable Deployment is deleted with --cascade=orphan; the
 * Deployment created again under the same name takes it over (and cleans it up), instead of
 * every later release of it failing on a name taken by a stranger.
 */
export function isOurCanary(c: V1Deployment, stable: V1Deployment): boolean {
  const l = c.metadata?.labels ?? {};
  const owners = c.metadata?.ownerReferences ?? [];
  return l[LABEL_ROLE] === ROLE_CANARY && l[LABEL_STABLE_NAME] === stable.metadata?.name && (owners.length === 0 || owners.some((o) => o.uid === stable.metadata?.uid));
}
