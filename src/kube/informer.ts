/**
 * A list+watch cache that survives what real API servers do to long watches:
 * - the stream ends (server timeout, apiserver restart): watch again from the last resourceVersion;
 * - the resourceVersion is too old (410 Gone, or an ERROR event): relist, and report the
 *   difference as adds, updates and deletes so no change is lost;
 * - errors (connection refused, 5xx): retry with exponential backoff and jitter;
 * - silence: a watch that delivered nothing (not even a bookmark) for longer than `silenceMs`
 *   is presumed dead (half-open TCP, a proxy that stopped forwarding) and restarted.
 * Bookmarks are requested so an idle but healthy watch still speaks about once a minute.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from './logger.js';
import { ApiError, type KubeHttp } from './http.js';
import type { List } from './client.js';

export type InformerEvent = 'add' | 'update' | 'delete';
export type Handler<T> = (event: InformerEvent, obj: T, old?: T) => void;

export interface InformerOptions {
  /** For logs: e.g. "deployments(kube-canary.io/enabled=true)". */
  name: string;
  /** Collection path, e.g. /apis/apps/v1/deployments. */
  path: string;
  labelSelector?: string;
  /** Restart a watch that has been silent for this long (default 150 s: bookmarks come about every minute). */
  silenceMs?: number;
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** A custom resource: a 404 on its list is said to mean that its CRD is not installed. */
  customResource?: boolean;
}

/** How often a list that keeps failing for a lasting reason (404, 403) is warned about again. */
const LASTING_REPEAT_MS = 5 * 60_000;

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
/** Objects per list request (client-go's reflector uses the same page size). */
export const LIST_PAGE = 500;

/**
 * Drops what no reader of the cache uses but every object carries: managedFields and kubectl's
 * last-applied copy of the whole object. Halves the cache for 500 releases (stable + canary
 * Deployments); writes are JSON patches of named paths, so nothing dropped here is written back.
 */
export function trimForCache<T extends KubernetesObject>(obj: T): T {
  const md = obj.metadata;
  if (md) {
    delete md.managedFields;
    if (md.annotations && LAST_APPLIED in md.annotations) delete md.annotations[LAST_APPLIED];
  }
  return obj;
}

/**
 * Whether `a` is an older version of the object than `b`. resourceVersions are opaque by
 * contract; the API server (etcd3) makes them increasing integers, which is what this relies on
 * (anything else is never called older, so the newest event wins as before).
 */
function olderThan(a: KubernetesObject, b: KubernetesObject): boolean {
  const x = Number(a.metadata?.resourceVersion);
  const y = Number(b.metadata?.resourceVersion);
  return Number.isFinite(x) && Number.isFinite(y) && x < y;
}

export const objectKey = (o: KubernetesObject) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

export class Informer<T extends KubernetesObject> {
  private readonly store = new Map<string, T>();
  private readonly handlers: Handler<T>[] = [];
  private resourceVersion = '';
  private stopped = false;
  private synced = false;
  private abort?: AbortController;
  private loop?: Promise<void>;
  private syncWaiters: Array<() => void> = [];
  private settleWaiters: Array<() => void> = [];
  /**
   * Why the list fails, while it fails in a way retrying soon will not mend: 404 (the resource is
   * not served: its CRD is not installed) or 403 (RBAC forbids it). Cleared by the next list that works.
   */
  private lasting?: ApiError;
  private lastingSaidAt = 0;
  /** Counters for metrics and tests. */
  readonly stats = { lists: 0, watches: 0, restarts: 0, silentRestarts: 0, errors: 0 };

  constructor(private readonly http: KubeHttp, private readonly opts: InformerOptions, private readonly log: Logger) {}

  on(handler: Handler<T>): this {
    this.handlers.push(handler);
    return this;
  }

  get(namespace: string, name: string): T | undefined {
    return this.store.get(`${namespace}/${name}`);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  /**
   * Write-through after our own write: store the API's answer at once, so a read right after
   * does not see the version before it (the watch event follows and changes nothing).
   */
  prime(obj: T): void {
    const key = objectKey(obj);
    const cur = this.store.get(key);
    if (!cur || (!olderThan(obj, cur) && obj.metadata?.resourceVersion !== cur.metadata?.resourceVersion)) this.store.set(key, trimForCache(obj));
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves after the first successful list. */
  waitForSync(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((r) => this.syncWaiters.push(r));
  }

  /** The error of a list that fails for a lasting reason (see `lasting`), or undefined. */
  get lastingFailure(): ApiError | undefined {
    return this.lasting;
  }

  /** Resolves after the first successful list, or once a list has failed for a lasting reason. */
  waitUntilSettled(): Promise<void> {
    return this.synced || this.lasting ? Promise.resolve() : new Promise((r) => this.settleWaiters.push(r));
  }

  start(): this {
    if (!this.loop) this.loop = this.run();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    const minBackoff = this.opts.backoffMinMs ?? 500;
    const maxBackoff = this.opts.backoffMaxMs ?? 30_000;
    let backoff = minBackoff;
    while (!this.stopped) {
      let listing = false;
      let watchStarted: number | undefined;
      try {
        if (!this.resourceVersion) {
          listing = true;
          await this.relist();
          listing = false;
        }
        watchStarted = Date.now();
        await this.watchOnce();
        if (this.stopped) break;
        this.stats.restarts += 1;
        // A stream the server closed after a while is normal; one that dies at once is not.
        if (Date.now() - watchStarted >= 1000) {
          backoff = minBackoff;
          continue;
        }
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, maxBackoff);
      } catch (err) {
        if (this.stopped) break;
        this.stats.errors += 1;
        // A watch that ran a while before it failed starts the ramp again; one failing at once
        // (or a failing list) goes on up it, so a lasting failure is not retried twice a second.
        if (watchStarted !== undefined && Date.now() - watchStarted >= 1000) backoff = minBackoff;
        if (err instanceof ApiError && err.code === 410) this.resourceVersion = '';
        if (listing && err instanceof ApiError && (err.code === 404 || err.code === 403)) this.listFailedLastingly(err, backoff);
        else this.log.warn({ informer: this.opts.name, err: (err as Error).message, retryInMs: backoff }, 'watch failed; retrying');
        await this.sleep(backoff * (0.8 + Math.random() * 0.4));
        backoff = Math.min(backoff * 2, maxBackoff);
      }
    }
  }

  /**
   * A list refused with 404 (the resource is not served: for a custom resource, its CRD is not
   * installed) or 403 (RBAC): retrying soon will not mend it, so whoever waits for the cache is
   * told at once (waitUntilSettled), and the warning is repeated every LASTING_REPEAT_MS, not on
   * every retry; the retries themselves keep their pace, so a fix is picked up quickly.
   */
  private listFailedLastingly(err: ApiError, retryInMs: number): void {
    const now = Date.now();
    const repeat = this.lasting?.code === err.code && now - this.lastingSaidAt < LASTING_REPEAT_MS;
    this.lasting = err;
    for (const w of this.settleWaiters.splice(0)) w();
    if (!repeat) this.lastingSaidAt = now;
    const what = err.code === 403 ? 'access is forbidden (RBAC)' : this.opts.customResource ? 'the API server does not serve this resource (is its CustomResourceDefinition installed?)' : 'the API server answers 404 for this resource (is the kubeconfig\'s server URL right?)';
    this.log[repeat ? 'debug' : 'warn']({ informer: this.opts.name, err: err.message, retryInMs }, `cannot list: ${what}; retrying`);
  }

  /**
   * The whole list, in pages of LIST_PAGE as client-go's reflector reads it: each page is a request
   * of its own (bounded by the request deadline) however large the cluster, and trimmed as it comes.
   * Nothing is applied before the last page: a failure half-way (a continue token expired, 410)
   * leaves the cache as it was and the loop lists again.
   */
  private async listAll(): Promise<{ items: T[]; resourceVersion: string }> {
    const items: T[] = [];
    let resourceVersion = '';
    let cont: string | undefined;
    do {
      const page = await this.http.request<List<T>>('GET', this.opts.path, { query: { labelSelector: this.opts.labelSelector, limit: LIST_PAGE, continue: cont } });
      for (const raw of page.items ?? []) items.push(trimForCache(raw));
      // Every page of one list carries the same resourceVersion: the snapshot the watch starts from.
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return { items, resourceVersion };
  }

  private async relist(): Promise<void> {
    this.stats.lists += 1;
    const list = await this.listAll();
    // Stopped while it was in flight (a namespace deleted, the process stopping): whoever stopped
    // it has cleaned up after it, and must not get adds for it afterwards.
    if (this.stopped) return;
    const seen = new Set<string>();
    for (const obj of list.items) {
      const key = objectKey(obj);
      seen.add(key);
      const old = this.store.get(key);
      this.store.set(key, obj);
      if (!old) this.emit('add', obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit('update', obj, old);
    }
    for (const [key, old] of [...this.store]) {
      if (!seen.has(key)) {
        this.store.delete(key);
        this.emit('delete', old);
      }
    }
    this.resourceVersion = list.resourceVersion;
    if (this.lasting) this.log.info({ informer: this.opts.name }, 'listing works again');
    this.lasting = undefined;
    if (!this.synced) {
      this.synced = true;
      for (const w of [...this.syncWaiters.splice(0), ...this.settleWaiters.splice(0)]) w();
    }
  }

  private async watchOnce(): Promise<void> {
    // Stopped while the list was in flight: stop() had no watch to abort, and one started now
    // would run until the server ends it (minutes), holding up whoever awaits stop().
    if (this.stopped) return;
    this.stats.watches += 1;
    const ctrl = new AbortController();
    this.abort = ctrl;
    const silenceMs = this.opts.silenceMs ?? 150_000;
    let last = Date.now();
    let silent = false;
    let restart = false;
    const watchdog = setInterval(() => {
      if (Date.now() - last > silenceMs) {
        silent = true;
        this.stats.silentRestarts += 1;
        this.log.warn({ informer: this.opts.name, silentForMs: Date.now() - last }, 'watch went silent; restarting it');
        ctrl.abort();
      }
    }, Math.min(5_000, Math.max(100, silenceMs / 4)));
    try {
      await this.http.watch(
        this.opts.path,
        {
          labelSelector: this.opts.labelSelector,
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          // The server ends the stream after this; jitter spreads the reconnects of many watches.
          timeoutSeconds: 240 + Math.floor(Math.random() * 120),
        },
        (e) => {
          last = Date.now();
          if (this.onWatchEvent(e.type, e.object as T) === 'restart') {
            restart = true;
            ctrl.abort();
          }
        },
        ctrl.signal,
      );
    } catch (err) {
      if (silent || restart || this.stopped) return;
      throw err;
    } finally {
      clearInterval(watchdog);
    }
  }

  private onWatchEvent(type: string, obj: T): 'restart' | undefined {
    if (type === 'ERROR') {
      const status = obj as unknown as { code?: number; message?: string };
      // 410: our resourceVersion is older than etcd's compaction window; start over.
      if (status.code === 410) this.resourceVersion = '';
      this.log.info({ informer: this.opts.name, code: status.code, message: status.message }, 'watch error event; restarting');
      return 'restart';
    }
    const rv = obj.metadata?.resourceVersion;
    if (type === 'BOOKMARK') {
      if (rv) this.resourceVersion = rv;
      return undefined;
    }
    trimForCache(obj);
    const key = objectKey(obj);
    const old = this.store.get(key);
    if (type === 'DELETED') {
      this.store.delete(key);
      this.emit('delete', obj);
    } else if (type === 'ADDED' || type === 'MODIFIED') {
      // A version older than one primed from our own write (the watch lags behind our PATCH's
      // answer) must not overwrite it: a reconcile would read the state before our write and
      // its guarded commit would fail (measured: 4,509 conflicts in one 500-release run).
      if (old && olderThan(obj, old)) {
        if (rv) this.resourceVersion = rv;
        return undefined;
      }
      this.store.set(key, obj);
      this.emit(old ? 'update' : 'add', obj, old);
    }
    if (rv) this.resourceVersion = rv;
    return undefined;
  }

  private emit(event: InformerEvent, obj: T, old?: T): void {
    for (const h of this.handlers) {
      try {
        h(event, obj, old);
      } catch (err) {
        this.log.error({ informer: this.opts.name, err: (err as Error).message }, 'informer handler failed');
      }
    }
  }

  private wake?: () => void;

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => {
      const t = setTimeout(r, ms);
      this.wake = () => {
        clearTimeout(t);
        r();
      };
    });
  }
}
