/**
 * Watch-backed reads of custom objects, one namespaced informer per (resource, namespace),
 * started on first use. A traffic provider reads its routing objects here on every reconcile
 * instead of GETting them: a release step then costs writes only. Namespaced watches (not one
 * cluster-wide watch) so a progressor scoped by RBAC to some namespaces still works.
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

export class InformerObjectCache implements ObjectCache {
  private readonly informers = new Map<string, Informer<ApiObject>>();

  constructor(private readonly http: KubeHttp, private readonly log: Logger, private readonly opts: { silenceMs?: number; syncWaitMs?: number } = {}) {}

  private informer(gvr: Gvr, namespace: string): Informer<ApiObject> {
    const key = `${gvr.group}/${gvr.plural}/${namespace}`;
    let inf = this.informers.get(key);
    if (!inf) {
      inf = new Informer<ApiObject>(this.http, { name: `${gvr.plural}(${namespace})`, path: `/apis/${gvr.group}/${gvr.version}/namespaces/${namespace}/${gvr.plural}`, ...(this.opts.silenceMs ? { silenceMs: this.opts.silenceMs } : {}) }, this.log);
      this.informers.set(key, inf);
      inf.start();
    }
    return inf;
  }

  async list(gvr: Gvr, namespace: string): Promise<ApiObject[] | undefined> {
    const inf = this.informer(gvr, namespace);
    if (!inf.hasSynced) {
      const wait = this.opts.syncWaitMs ?? 3000;
      await Promise.race([inf.waitForSync(), new Promise((r) => setTimeout(r, wait).unref())]);
      if (!inf.hasSynced) return undefined;
    }
    return inf.list();
  }

  remember(gvr: Gvr, namespace: string, obj: ApiObject): void {
    this.informers.get(`${gvr.group}/${gvr.plural}/${namespace}`)?.prime(obj);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
  }
}
