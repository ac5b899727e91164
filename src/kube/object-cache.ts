/**
 * Watch-backed reads of custom objects, one namespaced informer per (resource, namespace),
 * started on first use and stopped once no release has read it for a while. A traffic provider
 * reads its routing objects here on every reconcile instead of GETting them: a release step then
 * costs writes only. Namespaced watches (not one cluster-wide watch) so a progressor scoped by
 * RBAC to some namespaces still works.
 */
import type { Logger } from './logger.js';
import type { KubeHttp } from './http.js';
import type { ApiObject, Gvr } from './custom-objects.js';
import { Informer } from './informer.js';

export interface ObjectCache {
  /** The namespace's objects, or undefined if the cache is not (yet) synced: read from the API then. */
  list(gvr: Gvr, namespace: string): Promise<ApiObject[] | undefined>;
  /** Our own write's result, stored before its watch event arrives. */
  remember(gvr: Gvr, namespace: string, obj: ApiObject): void;
}

/**
 * An informer unread for this long is stopped (default 10 min). Every active release reads its
 * VirtualServices at least once per controller resync (5 min), so only namespaces whose
 * releases have all ended lose their watches; a later release there starts them again.
 */
const IDLE_MS = 10 * 60_000;

export class InformerObjectCache implements ObjectCache {
  private readonly informers = new Map<string, { informer: Informer<ApiObject>; usedAt: number }>();
  private sweeper?: NodeJS.Timeout;
  private readonly idleMs: number;

  constructor(private readonly http: KubeHttp, private readonly log: Logger, private readonly opts: { silenceMs?: number; syncWaitMs?: number; idleMs?: number } = {}) {
    this.idleMs = opts.idleMs ?? IDLE_MS;
  }

  private informer(gvr: Gvr, namespace: string): Informer<ApiObject> {
    const key = `${gvr.group}/${gvr.plural}/${namespace}`;
    let entry = this.informers.get(key);
    if (!entry) {
      const informer = new Informer<ApiObject>(this.http, { name: `${gvr.plural}(${namespace})`, path: `/apis/${gvr.group}/${gvr.version}/namespaces/${namespace}/${gvr.plural}`, customResource: true, ...(this.opts.silenceMs ? { silenceMs: this.opts.silenceMs } : {}) }, this.log);
      entry = { informer, usedAt: 0 };
      this.informers.set(key, entry);
      informer.start();
      this.sweeper ??= setInterval(() => this.sweep(), this.idleMs / 2).unref();
    }
    entry.usedAt = Date.now();
    return entry.informer;
  }

  /**
   * Without this, a watch per namespace that ever had a release ran for the life of the process.
   * A read racing a stop is safe: it finds the cache unsynced and reads the API, or gets what
   * the stopped informer held a moment ago; remember() then primes nothing.
   */
  private sweep(): void {
    const now = Date.now();
    for (const [key, { informer, usedAt }] of this.informers) {
      if (now - usedAt < this.idleMs) continue;
      this.informers.delete(key);
      this.log.debug({ informer: key, idleMs: now - usedAt }, 'routing objects unread; watch stopped');
      void informer.stop();
    }
    if (this.informers.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  async list(gvr: Gvr, namespace: string): Promise<ApiObject[] | undefined> {
    const inf = this.informer(gvr, namespace);
    if (!inf.hasSynced) {
      // Not for a list that cannot work (no CRD, no permission): the caller's API read says why at once.
      const wait = this.opts.syncWaitMs ?? 3000;
      await Promise.race([inf.waitUntilSettled(), new Promise((r) => setTimeout(r, wait).unref())]);
      if (!inf.hasSynced) return undefined;
    }
    return inf.list();
  }

  remember(gvr: Gvr, namespace: string, obj: ApiObject): void {
    const entry = this.informers.get(`${gvr.group}/${gvr.plural}/${namespace}`);
    if (!entry) return;
    entry.usedAt = Date.now();
    entry.informer.prime(obj);
  }

  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    await Promise.all([...this.informers.values()].map((e) => e.informer.stop()));
  }
}
