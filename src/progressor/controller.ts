/**
 * Wiring: label-selected informers feed a de-duplicating work queue; each release key
 * (namespace/name) is reconciled by at most one worker at a time; per-release timers wake a
 * release exactly when its next step is due. Nothing polls the cluster.
 *
 * Watched:
 * - Namespaces labelled kube-canary.io/enabled=true;
 * - Deployments labelled kube-canary.io/enabled=true, cluster-wide;
 * - in each opted-in Namespace, Deployments not labelled enabled=false and not canaries
 *   (one watch per opted-in Namespace, started and stopped with its label);
 * - canary Deployments (kube-canary.io/role=canary), cluster-wide: their readiness drives steps.
 */
import type { V1Deployment, V1Namespace } from '@kubernetes/client-node';
import { ANN_REVISION, LABEL_ENABLED, LABEL_ROLE, LABEL_STABLE_NAME, ROLE_CANARY, SYSTEM_NAMESPACES, canaryName } from '../config/contract.js';
import { isTerminal } from '../config/status.js';
import { isNotFound } from '../kube/errors.js';
import { type Kube, deploymentsPath, namespacesPath } from '../kube/client.js';
import { Informer, objectKey } from '../kube/informer.js';
import type { Logger } from '../kube/logger.js';
import type { ProgressorMetrics } from './metrics.js';
import { NotLeaderError, type Reconciler, StaleError } from './reconciler.js';
import { routeHolder, routedService } from './shared-service.js';

export interface ControllerOptions {
  kube: Kube;
  reconciler: (c: Controller) => Reconciler;
  log: Logger;
  metrics: ProgressorMetrics;
  /** The progressor's own namespace: never acted on. */
  ownNamespace?: string;
  concurrency?: number;
  /** Re-enqueue every release this often from the cache (no API calls): a safety net, not polling. */
  resyncMs?: number;
  /** Informer watchdog bound. */
  silenceMs?: number;
  /**
   * Only these namespaces (namespaced watches instead of cluster-wide ones): for clusters shared
   * between teams or test runs, where one progressor must not act on another's releases.
   */
  watchNamespaces?: string[];
}

const MAX_TIMER_MS = 24 * 3600_000;

export class Controller {
  readonly namespaces: Informer<V1Namespace>;
  /** Cluster-wide, or one per watched namespace. */
  private readonly optedIn: Informer<V1Deployment>[];
  private readonly canaries: Informer<V1Deployment>[];
  private readonly nsDeployments = new Map<string, Informer<V1Deployment>>();
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; due: number }>();
  private readonly dueAt = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  /**
   * Releases whose Deployment left our scope mid-release (its label, or its Namespace's, was
   * removed): no watch sees them any more, so they are read from the API until their release
   * is ended (step(): optedOut), instead of being left paused with nobody to finish them.
   */
  private readonly leftScope = new Set<string>();
  /** The last state of a Deployment deleted mid-release, until its routes are set back to stable (Reconciler.releaseGone). */
  private readonly deletedMidRelease = new Map<string, V1Deployment>();
  /** Deployment keys per routed Service (namespace/service) and the reverse, for routeHolder() without a scan of every cache. */
  private readonly byService = new Map<string, Set<string>>();
  private readonly serviceOf = new Map<string, string>();
  /** resourceVersion our own last patch produced, per release: that watch event is our echo. */
  private readonly ownWrites = new Map<string, string>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private resync?: NodeJS.Timeout;
  private stopped = false;
  private started = false;
  /**
   * Every informer has listed once. Before that, keys are queued but not reconciled: an informer
   * emits its first objects while the others still list, and a reconcile that found no canary in
   * a cache not yet filled would act on a canary it believes deleted (CanaryDeleted, traffic moved).
   */
  private synced = false;
  private reconciler!: Reconciler;

  constructor(private readonly o: ControllerOptions) {
    const http = o.kube.http;
    const common = { ...(o.silenceMs ? { silenceMs: o.silenceMs } : {}) };
    this.namespaces = new Informer<V1Namespace>(http, { name: 'namespaces', path: namespacesPath(), labelSelector: `${LABEL_ENABLED}=true`, ...common }, o.log);
    const scopes: Array<string | undefined> = o.watchNamespaces?.length ? o.watchNamespaces : [undefined];
    this.optedIn = scopes.map((ns) => new Informer<V1Deployment>(http, { name: `deployments(opted-in${ns ? ` in ${ns}` : ''})`, path: deploymentsPath(ns), labelSelector: `${LABEL_ENABLED}=true`, ...common }, o.log));
    this.canaries = scopes.map((ns) => new Informer<V1Deployment>(http, { name: `deployments(canaries${ns ? ` in ${ns}` : ''})`, path: deploymentsPath(ns), labelSelector: `${LABEL_ROLE}=${ROLE_CANARY}`, ...common }, o.log));
  }

  async start(): Promise<void> {
    this.reconciler = this.o.reconciler(this);
    this.started = true;
    this.namespaces.on((ev, ns) => this.onNamespace(ev, ns));
    for (const i of this.optedIn) i.on((ev, d) => this.onDeployment(ev, d));
    for (const i of this.canaries) {
      i.on((_ev, c) => {
        const stable = c.metadata?.labels?.[LABEL_STABLE_NAME];
        if (stable && c.metadata?.namespace) this.enqueue(`${c.metadata.namespace}/${stable}`);
      });
    }
    for (const i of [...this.canaries, this.namespaces, ...this.optedIn]) i.start();
    await Promise.all([...this.canaries, this.namespaces, ...this.optedIn].map((i) => i.waitForSync()));
    await Promise.all([...this.nsDeployments.values()].map((i) => i.waitForSync()));
    this.o.log.info({ releases: this.keys().length }, 'caches synced; reconciling');
    this.synced = true;
    for (const k of this.keys()) this.enqueue(k);
    this.resync = setInterval(() => this.keys().forEach((k) => this.enqueue(k)), this.o.resyncMs ?? 5 * 60_000);
    this.pump();
  }

  /** Stops acting at once: no new reconcile starts, in-flight ones are aborted before their next write. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    clearInterval(this.resync);
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    this.queue.length = 0;
    this.queued.clear();
    await Promise.all([this.namespaces, ...this.optedIn, ...this.canaries, ...this.nsDeployments.values()].map((i) => i.stop()));
    await Promise.allSettled([...this.inflight]);
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  healthy(): { ok: boolean; detail: string } {
    const informers = [this.namespaces, ...this.optedIn, ...this.canaries, ...this.nsDeployments.values()];
    const synced = informers.every((i) => i.hasSynced);
    // Why it is not synced, when a list is refused (RBAC, a wrong server URL): readyz says it.
    const refused = informers.find((i) => !i.hasSynced && i.lastingFailure)?.lastingFailure;
    const state = synced ? 'synced' : refused ? `syncing (a list is refused: ${refused.message})` : 'syncing';
    return { ok: !this.started || synced, detail: `informers ${state}, ${this.keys().length} opted-in Deployments, ${this.timers.size} timers, ${this.running.size} reconciling` };
  }

  canaryOf(namespace: string, stableName: string): V1Deployment | undefined {
    for (const i of this.canaries) {
      const c = i.get(namespace, canaryName(stableName));
      if (c) return c;
    }
    return undefined;
  }

  /** The opted-in stable Deployment for a key, or undefined when it is not (or no longer) ours to act on. */
  stableFor(key: string): V1Deployment | undefined {
    const [ns, name] = key.split('/') as [string, string];
    if (!this.inScope(ns)) return undefined;
    const a = this.optedIn.map((i) => i.get(ns, name)).find((x) => x);
    const b = this.nsDeployments.get(ns)?.get(ns, name);
    const d = newest(a, b);
    // Being deleted: garbage collection removes the canary and generated routing with it.
    if (!d || d.metadata?.deletionTimestamp) return undefined;
    const labels = d.metadata?.labels ?? {};
    if (labels[LABEL_ROLE] === ROLE_CANARY || labels[LABEL_ENABLED] === 'false') return undefined;
    if (labels[LABEL_ENABLED] === 'true') return d;
    return this.namespaces.get('', ns) ? d : undefined;
  }

  /** Of the opted-in Deployments behind `stable`'s Service, the one whose release routes it, if not `stable` (shared-service.ts). */
  routeHolder(stable: V1Deployment): string | undefined {
    const keys = this.byService.get(serviceKey(stable));
    if (!keys) return undefined;
    const others: V1Deployment[] = [];
    for (const k of keys) {
      const d = this.stableFor(k);
      if (d) others.push(d);
    }
    return routeHolder(stable, others);
  }

  /** Reconcile the other Deployments behind `d`'s Service (one of them may be waiting for `d`'s release). */
  private wakeSiblings(d: V1Deployment): void {
    const self = objectKey(d);
    for (const k of this.byService.get(serviceKey(d)) ?? []) if (k !== self) this.enqueue(k);
  }

  /** Keeps byService current: every Deployment our watches see, under the Service it routes. */
  private indexService(ev: string, d: V1Deployment): void {
    const key = objectKey(d);
    const was = this.serviceOf.get(key);
    // A delete from one watch while another still has it (left one selector, not the other) keeps it.
    const now = ev === 'delete' && !this.stableFor(key) ? undefined : serviceKey(d);
    if (was === now) return;
    if (was) {
      const set = this.byService.get(was)!;
      set.delete(key);
      if (set.size === 0) this.byService.delete(was);
    }
    if (now) {
      this.serviceOf.set(key, now);
      let set = this.byService.get(now);
      if (!set) this.byService.set(now, (set = new Set()));
      set.add(key);
    } else {
      this.serviceOf.delete(key);
    }
  }

  keys(): string[] {
    const all = new Set<string>();
    for (const i of this.optedIn) for (const d of i.list()) all.add(objectKey(d));
    for (const i of this.nsDeployments.values()) for (const d of i.list()) all.add(objectKey(d));
    return [...all].filter((k) => this.stableFor(k));
  }

  private onNamespace(ev: string, ns: V1Namespace): void {
    const name = ns.metadata!.name!;
    if (!this.inScope(name)) return;
    if (ev === 'delete') {
      const inf = this.nsDeployments.get(name);
      this.nsDeployments.delete(name);
      if (inf) {
        for (const d of inf.list()) if (d.metadata?.annotations?.[ANN_REVISION] !== undefined) this.leftScope.add(objectKey(d));
        const keys = inf.list().map(objectKey);
        void inf.stop();
        // A stopped watch sends no deletes: what only it saw leaves the Service index here.
        for (const d of inf.list()) this.indexService('delete', d);
        for (const k of keys) {
          // Still ours through its own label (the other watch): nothing to forget.
          if (!this.stableFor(k)) this.forget(k);
          this.enqueue(k);
        }
      }
      return;
    }
    if (this.nsDeployments.has(name)) return;
    const inf = new Informer<V1Deployment>(this.o.kube.http, { name: `deployments(${name})`, path: deploymentsPath(name), labelSelector: `${LABEL_ENABLED}!=false,${LABEL_ROLE}!=${ROLE_CANARY}`, ...(this.o.silenceMs ? { silenceMs: this.o.silenceMs } : {}) }, this.o.log);
    inf.on((e, d) => this.onDeployment(e, d));
    this.nsDeployments.set(name, inf);
    inf.start();
  }

  private onDeployment(ev: string, d: V1Deployment): void {
    const key = objectKey(d);
    this.indexService(ev, d);
    // The echo of our own status write: we decided on exactly this and scheduled what follows.
    if (ev === 'update' && d.metadata?.resourceVersion && this.ownWrites.get(key) === d.metadata.resourceVersion) return;
    if (ev === 'delete' && !this.stableFor(key)) {
      const t = this.timers.get(key);
      if (t) clearTimeout(t.timer);
      this.timers.delete(key);
      this.ownWrites.delete(key);
      this.forget(key);
      // Gone from the watch with a release in progress: deleted, or no longer opted in.
      if (d.metadata?.annotations?.[ANN_REVISION] !== undefined && this.inScope(d.metadata.namespace!)) {
        this.leftScope.add(key);
        this.deletedMidRelease.set(key, d);
        this.enqueue(key);
      }
      return;
    }
    this.enqueue(key);
  }

  /**
   * A Deployment deleted mid-release (its entry in deletedMidRelease): when what is there now is
   * another object (created again) or nothing, its routes go back to stable (releaseGone); when
   * it is the same object, it only left our scope (the opt-out path ends that release). Either
   * way the entry is done with.
   */
  private async routesOfDeleted(key: string, now: V1Deployment | undefined): Promise<void> {
    const deleted = this.deletedMidRelease.get(key);
    if (!deleted) return;
    if (now?.metadata?.uid !== deleted.metadata?.uid) {
      await this.reconciler.releaseGone(deleted);
      // Its routes are set back: one waiting behind the same Service may start now, not before
      // (or this late write could undo its first weight).
      this.wakeSiblings(deleted);
    }
    this.deletedMidRelease.delete(key);
  }

  /** What is kept per Deployment, dropped once it is gone from our watches (deleted, or out of scope). */
  private forget(key: string): void {
    const [ns, name] = key.split('/') as [string, string];
    this.failures.delete(key);
    void this.o.metrics.forget(ns, name);
    this.reconciler.forget(ns, name);
  }

  private inScope(ns: string): boolean {
    if ((SYSTEM_NAMESPACES as readonly string[]).includes(ns) || ns === this.o.ownNamespace) return false;
    return !this.o.watchNamespaces?.length || this.o.watchNamespaces.includes(ns);
  }

  enqueue(key: string): void {
    if (this.stopped || !this.started) return;
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.pump();
  }

  /** Our own write's answer into whichever cache holds the release (only if newer: see Informer.prime). */
  private prime(key: string, d: V1Deployment): void {
    const [ns, name] = key.split('/') as [string, string];
    for (const i of [...this.optedIn, this.nsDeployments.get(ns)]) if (i?.get(ns, name)) i.prime(d);
  }

  private schedule(key: string, ms: number): void {
    ms = Math.max(0, ms);
    const due = Date.now() + ms;
    const cur = this.timers.get(key);
    if (cur && cur.due <= due) return;
    if (cur) clearTimeout(cur.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.dueAt.set(key, due);
      this.enqueue(key);
    }, Math.min(ms, MAX_TIMER_MS));
    this.timers.set(key, { timer, due });
  }

  private pump(): void {
    if (!this.synced) return;
    const limit = this.o.concurrency ?? 32;
    while (!this.stopped && this.running.size < limit && this.queue.length > 0) {
      const key = this.queue.shift()!;
      this.queued.delete(key);
      if (this.running.has(key)) {
        this.dirty.add(key);
        continue;
      }
      this.running.add(key);
      const p = this.run(key).finally(() => {
        this.inflight.delete(p);
        this.running.delete(key);
        if (this.dirty.delete(key)) this.enqueue(key);
        this.pump();
      });
      this.inflight.add(p);
    }
  }

  /** The Deployment of a release that left our scope, read from the API; undefined when there is nothing left to end. */
  private async optedOutRelease(key: string): Promise<V1Deployment | undefined> {
    const [ns, name] = key.split('/') as [string, string];
    let d: V1Deployment | undefined;
    try {
      d = await this.o.kube.getDeployment(ns, name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    // Deleted mid-release (and perhaps created again since, with no release yet): what garbage
    // collection does not take with it, a VirtualService the user owns, is set back to stable.
    await this.routesOfDeleted(key, d);
    if (!d) {
      this.leftScope.delete(key);
      return undefined;
    }
    const labels = d.metadata?.labels ?? {};
    // Opted in again (our watches will bring it back), being deleted, or nothing in progress.
    const optedIn = labels[LABEL_ENABLED] === 'true' || (labels[LABEL_ENABLED] !== 'false' && !!this.namespaces.get('', ns));
    if (optedIn || d.metadata?.deletionTimestamp || d.metadata?.annotations?.[ANN_REVISION] === undefined || labels[LABEL_ROLE] === ROLE_CANARY) {
      this.leftScope.delete(key);
      return undefined;
    }
    return d;
  }

  private async run(key: string): Promise<void> {
    const due = this.dueAt.get(key);
    if (due !== undefined) {
      this.dueAt.delete(key);
      this.o.metrics.stepLag.observe(Math.max(0, Date.now() - due) / 1000);
    }
    let stable = this.stableFor(key);
    if (stable) this.leftScope.delete(key);
    else if (!this.leftScope.has(key) && !this.deletedMidRelease.has(key)) return;
    const t = this.timers.get(key);
    if (t) clearTimeout(t.timer);
    this.timers.delete(key);
    const end = this.o.metrics.reconcileDuration.startTimer();
    try {
      // Created again already (kubectl replace --force, delete + apply): the new one is in our cache.
      if (stable) await this.routesOfDeleted(key, stable);
      const optedOut = !stable;
      stable ??= await this.optedOutRelease(key);
      if (!stable) return;
      const r = await this.reconciler.reconcile(stable, this.abort.signal, optedOut);
      // A release that ended frees its Service: one waiting for it starts now, not an interval later.
      // (Only on the write that ended it: idle reconciles also report their terminal status.)
      if (r.wroteResourceVersion !== undefined && r.phase && isTerminal(r.phase)) this.wakeSiblings(stable);
      if (optedOut && r.phase && isTerminal(r.phase)) {
        this.leftScope.delete(key);
        this.forget(key); // ended as a plain Deployment: its series go
      }
      this.failures.delete(key);
      if (r.wroteResourceVersion) this.ownWrites.set(key, r.wroteResourceVersion);
      // Write-through: a reconcile of this release right after this one (a canary event, a
      // dirty re-run) must see our own commit, not the version before it, or its guarded
      // patch fails on the resourceVersion and the whole step (gates included) is redone.
      if (r.written) this.prime(key, r.written);
      if (due !== undefined && r.weightChangedAt !== undefined) this.o.metrics.weightLag.observe(Math.max(0, r.weightChangedAt - due) / 1000);
      // The next step is due one interval after the instant this decision was made for, not
      // after this reconcile's writes returned (under load those take a while).
      if (r.requeueAfterMs !== undefined && !this.stopped) this.schedule(key, r.requeueAfterMs - (r.decidedAt !== undefined ? Math.max(0, Date.now() - r.decidedAt) : 0));
    } catch (err) {
      if (this.stopped || err instanceof NotLeaderError) return;
      if (err instanceof StaleError) {
        this.schedule(key, 200);
        return;
      }
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const retry = Math.min(500 * 2 ** (n - 1), 60_000);
      this.o.metrics.reconcileErrors.inc();
      this.o.log.warn({ release: key, err: (err as Error).message, attempt: n, retryInMs: retry }, 'reconcile failed; retrying');
      this.schedule(key, retry);
    } finally {
      end();
      this.o.metrics.apiRequests.set(this.o.kube.http.requests);
      for (const [k, v] of this.o.kube.http.requestsBy) {
        const [verb, resource] = k.split(' ') as [string, string];
        this.o.metrics.apiRequestsBy.set({ verb, resource }, v);
      }
    }
  }
}

/** Of two cached copies of the same object (two watches), the one with the later resourceVersion. */
function newest(a: V1Deployment | undefined, b: V1Deployment | undefined): V1Deployment | undefined {
  if (!a || !b) return a ?? b;
  const ra = Number(a.metadata?.resourceVersion);
  const rb = Number(b.metadata?.resourceVersion);
  // resourceVersions are opaque, but etcd-backed ones are integers; fall back to the first.
  return Number.isFinite(ra) && Number.isFinite(rb) && rb > ra ? b : a;
}

const serviceKey = (d: V1Deployment) => `${d.metadata!.namespace}/${routedService(d)}`;
