/**
 * Istio: the canary article's objects. A DestinationRule splits the Service's pods into subsets
 * `stable` and `canary` by the track label, and a VirtualService routes the Service's host to
 * the two subsets with weights.
 *
 * When the user already has them (found by host, whatever their names), only the weights of the
 * routes that carry the host's general traffic change (see canaryRoutes): every write is a JSON
 * patch of exactly the weight fields (plus a missing canary subset or destination, added, never
 * rewritten), guarded by `test` ops so a concurrent edit of the same route makes the patch fail
 * instead of landing on the wrong entry. Everything else the user wrote stays byte-for-byte the
 * same. When absent they are generated, named after the Deployment and owned by it (owned again
 * by a Deployment created anew after an orphaning delete).
 */
import type { Operation } from 'fast-json-patch';
import { TRACK_CANARY, TRACK_STABLE } from '../config/contract.js';
import type { ApiObject, CustomObjectClient, Gvr } from '../kube/custom-objects.js';
import type { Priority } from '../kube/http.js';
import type { ObjectCache } from '../kube/object-cache.js';
import type { RouteTarget, Routes, TrafficProvider } from './provider.js';

// v1 is served by the CRDs we ship against (shared/crds/istio) and by Istio >= 1.22.
export const ISTIO_VERSION = 'v1';
const SERVED_BY = 'Istio 1.22 or newer';
export const DESTINATION_RULES: Gvr = { group: 'networking.istio.io', version: ISTIO_VERSION, plural: 'destinationrules', servedBy: SERVED_BY };
export const VIRTUAL_SERVICES: Gvr = { group: 'networking.istio.io', version: ISTIO_VERSION, plural: 'virtualservices', servedBy: SERVED_BY };
const API_VERSION = `networking.istio.io/${ISTIO_VERSION}`;
const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'kube-canary' };
/** How long a read serves the weight PATCH that follows it; above LAST_READ_SWEEP entries, older ones are swept. */
const LAST_READ_MS = 2000;
const LAST_READ_SWEEP = 256;

function generated(o: ApiObject): boolean {
  return (o.metadata.labels as Record<string, string> | undefined)?.['app.kubernetes.io/managed-by'] === MANAGED_BY['app.kubernetes.io/managed-by'];
}

function owners(o: ApiObject): Array<{ uid?: string }> {
  return (o.metadata.ownerReferences as Array<{ uid?: string }> | undefined) ?? [];
}

/** Whether kube-canary generated `o` for this Deployment: our label, and owned by it (or, orphaned, by nobody). */
function generatedFor(o: ApiObject, t: RouteTarget): boolean {
  return generated(o) && (owners(o).length === 0 || owners(o).some((r) => r.uid === t.owner.uid));
}

/** A `test` op that fails the patch if `o` changed since it was read (a user's take-over, say) instead of overwriting the change. */
function unchangedSince(o: ApiObject): Operation {
  return { op: 'test', path: '/metadata/resourceVersion', value: o.metadata.resourceVersion };
}

/**
 * Ops making the Deployment an owner of an object kube-canary generated: one that has none (its
 * Deployment was deleted with --cascade=orphan and created again), so garbage collection takes
 * it with the Deployment again; or one generated for another Deployment behind the same Service,
 * so that deleting that one does not take the routes of this one's releases with it (garbage
 * collection deletes an object only once all its owners are gone).
 */
function ownerOps(o: ApiObject, t: RouteTarget): Operation[] {
  if (!generated(o) || owners(o).some((r) => r.uid === t.owner.uid)) return [];
  return owners(o).length === 0 ? [{ op: 'add', path: '/metadata/ownerReferences', value: [t.owner] }] : [{ op: 'add', path: '/metadata/ownerReferences/-', value: t.owner }];
}

interface Destination {
  destination?: { host?: string; subset?: string };
  weight?: number;
}
interface HttpRoute {
  match?: unknown[];
  route?: Destination[];
}

/** `review`, `review.test`, `review.test.svc`, `review.test.svc.cluster.local` all name the Service. */
export function hostMatches(host: string | undefined, service: string, namespace: string): boolean {
  if (!host) return false;
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`].includes(host);
}

export function generatedDestinationRule(t: RouteTarget): ApiObject {
  return {
    apiVersion: API_VERSION,
    kind: 'DestinationRule',
    metadata: { name: t.name, namespace: t.namespace, labels: { ...MANAGED_BY }, ownerReferences: [t.owner] },
    spec: {
      host: t.service,
      subsets: [
        { name: TRACK_STABLE, labels: { [t.trackLabel]: TRACK_STABLE } },
        { name: TRACK_CANARY, labels: { [t.trackLabel]: TRACK_CANARY } },
      ],
    },
  };
}

export function generatedVirtualService(t: RouteTarget): ApiObject {
  return {
    apiVersion: API_VERSION,
    kind: 'VirtualService',
    metadata: { name: t.name, namespace: t.namespace, labels: { ...MANAGED_BY }, ownerReferences: [t.owner] },
    spec: {
      hosts: [t.service],
      http: [
        {
          route: [
            { destination: { host: t.service, subset: TRACK_STABLE }, weight: 100 },
            { destination: { host: t.service, subset: TRACK_CANARY }, weight: 0 },
          ],
        },
      ],
    },
  };
}

export function isRuleFor(dr: ApiObject, t: RouteTarget): boolean {
  return hostMatches(dr.spec?.host as string | undefined, t.service, t.namespace);
}

/** JSON patch adding whichever of the `stable`/`canary` subsets a user's DestinationRule lacks. */
export function subsetPatch(dr: ApiObject, t: RouteTarget): Operation[] {
  const subsets = (dr.spec?.subsets as Array<{ name?: string }> | undefined) ?? undefined;
  const ops: Operation[] = [];
  if (!subsets) ops.push({ op: 'add', path: '/spec/subsets', value: [] });
  for (const track of [TRACK_STABLE, TRACK_CANARY]) {
    if (!subsets?.some((s) => s.name === track)) ops.push({ op: 'add', path: '/spec/subsets/-', value: { name: track, labels: { [t.trackLabel]: track } } });
  }
  return ops;
}

interface StableRoute {
  i: number;
  stable: number;
  canary: number;
  route: Destination[];
  /** Its `match` selects a segment of the requests (see pinning()), not the host's general traffic. */
  pinned: boolean;
}

/**
 * Match conditions that pick requests by who sends them (a header or cookie, a query parameter,
 * the source workload): a segment, such as testers pinned to the running version. A condition on
 * the path, method, authority, port or gateway routes part of the host's general traffic (the
 * canary article's ingress route, Flagger's service.match) and is weighted like a route without match.
 */
const SEGMENT_KEYS = ['headers', 'withoutHeaders', 'queryParams', 'sourceLabels', 'sourceNamespace'];

/** Whether every condition of a route's `match` selects a segment (Istio ORs the conditions; an empty list matches every request). */
function pinning(match: unknown[] | undefined): boolean {
  return (match?.length ?? 0) > 0 && match!.every((m) => typeof m === 'object' && m !== null && SEGMENT_KEYS.some((k) => k in m));
}

/** The http routes that route the Service's host to the stable subset (index, destinations, and whether their `match` pins a segment). */
function stableRoutes(vs: ApiObject, t: RouteTarget): StableRoute[] {
  const http = (vs.spec?.http as HttpRoute[] | undefined) ?? [];
  const out: StableRoute[] = [];
  http.forEach((h, i) => {
    const route = h.route ?? [];
    const find = (subset: string) => route.findIndex((d) => d.destination?.subset === subset && hostMatches(d.destination?.host, t.service, t.namespace));
    const stable = find(TRACK_STABLE);
    if (stable >= 0) out.push({ i, stable, canary: find(TRACK_CANARY), route, pinned: pinning(h.match) });
  });
  return out;
}

/**
 * The routes kube-canary weights (docs/adr/0011): those that carry the host's general traffic
 * (no `match`, or one on path, method, gateway...), and those the user gave a canary destination.
 * A route pinning a segment to stable (say, a header for testers) is the user's decision and never written.
 */
function canaryRoutes(vs: ApiObject, t: RouteTarget): StableRoute[] {
  return stableRoutes(vs, t).filter((r) => !r.pinned || r.canary >= 0);
}

export function isServiceFor(vs: ApiObject, t: RouteTarget): boolean {
  return canaryRoutes(vs, t).length > 0;
}

/**
 * Weights routed by one VirtualService. Routes that disagree with each other report as
 * {-1,-1} so the caller sees a mismatch and re-applies the weights.
 */
export function readWeights(vs: ApiObject, t: RouteTarget): Routes | undefined {
  const rs = canaryRoutes(vs, t);
  if (rs.length === 0) return undefined;
  const weights = rs.map(({ stable, canary, route }) => {
    // Istio: a lone destination without a weight gets all the traffic.
    const s = route[stable]!.weight ?? (route.length === 1 ? 100 : 0);
    const c = canary >= 0 ? (route[canary]!.weight ?? 0) : 0;
    return { stable: s, canary: c };
  });
  const first = weights[0]!;
  return weights.every((w) => w.stable === first.stable && w.canary === first.canary) ? first : { stable: -1, canary: -1 };
}

/** JSON patch that changes only the two weights of every canary route (and adds a missing canary destination). */
export function weightPatch(vs: ApiObject, t: RouteTarget, stableWeight: number, canaryWeight: number): Operation[] {
  const ops: Operation[] = [];
  for (const { i, stable, canary, route } of canaryRoutes(vs, t)) {
    const base = `/spec/http/${i}/route`;
    ops.push({ op: 'test', path: `${base}/${stable}/destination/subset`, value: TRACK_STABLE });
    if (route[stable]!.weight !== stableWeight) ops.push({ op: route[stable]!.weight === undefined ? 'add' : 'replace', path: `${base}/${stable}/weight`, value: stableWeight });
    if (canary >= 0) {
      ops.push({ op: 'test', path: `${base}/${canary}/destination/subset`, value: TRACK_CANARY });
      if (route[canary]!.weight !== canaryWeight) ops.push({ op: route[canary]!.weight === undefined ? 'add' : 'replace', path: `${base}/${canary}/weight`, value: canaryWeight });
    } else {
      ops.push({ op: 'add', path: `${base}/-`, value: { destination: { host: route[stable]!.destination!.host, subset: TRACK_CANARY }, weight: canaryWeight } });
    }
  }
  // Only `test` ops left means nothing to change: send nothing.
  return ops.some((o) => o.op !== 'test') ? ops : [];
}

export class IstioProvider implements TrafficProvider {
  readonly name = 'istio';
  /**
   * VirtualService names per release, so a step reads its one or two objects by name instead
   * of listing every VirtualService in the namespace (hundreds of releases share namespaces).
   * Refreshed by a list whenever a name disappears or stops routing the host, and on reconcile().
   */
  private readonly known = new Map<string, string[]>();
  /**
   * The objects getRoutes() just read, handed to the setRoutes() of the same reconcile so a
   * weight change costs one PATCH, not GET + PATCH. Safe even if stale: the patch's `test` ops
   * fail if the route entries moved, and only the weights are written.
   */
  private readonly lastRead = new Map<string, { at: number; objs: ApiObject[] }>();

  /** `cache`: watch-backed reads (no GET per reconcile); without it, reads go to the API. */
  constructor(private readonly client: CustomObjectClient, private readonly cache?: ObjectCache) {}

  private async servicesFor(t: RouteTarget, fresh = false): Promise<ApiObject[]> {
    const cached = fresh ? undefined : await this.cache?.list(VIRTUAL_SERVICES, t.namespace);
    if (cached) return cached.filter((vs) => isServiceFor(vs, t));
    const key = `${t.namespace}/${t.name}`;
    const names = this.known.get(key);
    if (names && names.length > 0 && !fresh) {
      try {
        const objs = await Promise.all(names.map((n) => this.client.get(VIRTUAL_SERVICES, t.namespace, n)));
        if (objs.every((vs) => isServiceFor(vs, t))) return objs;
      } catch (err) {
        if ((err as { code?: number }).code !== 404) throw err;
      }
    }
    const found = (await this.client.list(VIRTUAL_SERVICES, t.namespace)).filter((vs) => isServiceFor(vs, t));
    if (found.length > 0) this.known.set(key, found.map((vs) => vs.metadata.name));
    else this.known.delete(key);
    return found;
  }

  /** The namespace's objects from the watch-backed cache, or from the API while it is not synced. */
  private async read(gvr: Gvr, namespace: string): Promise<ApiObject[]> {
    return (await this.cache?.list(gvr, namespace)) ?? this.client.list(gvr, namespace);
  }

  async reconcile(t: RouteTarget): Promise<void> {
    // What getRoutes() read before this may predate the objects created here: setRoutes() must not use it.
    this.lastRead.delete(`${t.namespace}/${t.name}`);
    // Cached reads: a list per new release would fetch every routing object of the namespace
    // (hundreds of releases share namespaces). A cache that lags behind is caught on create (409).
    const rules = (await this.read(DESTINATION_RULES, t.namespace)).filter((dr) => isRuleFor(dr, t));
    if (rules.length === 0) await this.createOrExplain(DESTINATION_RULES, t, generatedDestinationRule(t), 'DestinationRule', isRuleFor);
    for (const dr of rules) {
      await this.adopt(DESTINATION_RULES, t, dr);
      const ops = subsetPatch(dr, t);
      if (ops.length > 0) await this.patch(DESTINATION_RULES, t, dr.metadata.name, ops);
    }
    const services = await this.read(VIRTUAL_SERVICES, t.namespace);
    const mine = services.filter((vs) => isServiceFor(vs, t));
    if (mine.length > 0) {
      this.known.set(`${t.namespace}/${t.name}`, mine.map((vs) => vs.metadata.name));
      for (const vs of mine) await this.adopt(VIRTUAL_SERVICES, t, vs);
      return;
    }
    const pinned = services.find((vs) => stableRoutes(vs, t).length > 0);
    if (pinned) {
      throw new Error(
        `VirtualService ${pinned.metadata.name} routes host ${t.service} to subset "${TRACK_STABLE}" only in routes whose match picks a segment of the requests (headers, query parameters, source), which kube-canary leaves alone; add a route without match to subsets ${TRACK_STABLE} and ${TRACK_CANARY} (the host's general traffic), or a "${TRACK_CANARY}" destination with weight 0 to each match route that should carry the canary`,
      );
    }
    const other = services.find((vs) => ((vs.spec?.hosts as string[] | undefined) ?? []).some((h) => hostMatches(h, t.service, t.namespace)));
    if (other) {
      throw new Error(
        `VirtualService ${other.metadata.name} routes host ${t.service} but not to subset "${TRACK_STABLE}" of it; add destinations with subsets ${TRACK_STABLE} and ${TRACK_CANARY} (see the canary article) or delete it so kube-canary generates one`,
      );
    }
    await this.createOrExplain(VIRTUAL_SERVICES, t, generatedVirtualService(t), 'VirtualService', isServiceFor);
  }

  async setRoutes(t: RouteTarget, stableWeight: number, canaryWeight: number): Promise<void> {
    const key = `${t.namespace}/${t.name}`;
    const recent = this.lastRead.get(key);
    this.lastRead.delete(key);
    const services = recent && Date.now() - recent.at < LAST_READ_MS ? recent.objs : await this.servicesFor(t);
    if (services.length === 0) throw new Error(`no VirtualService routes ${t.service}.${t.namespace} to subset ${TRACK_STABLE}`);
    for (const vs of services) {
      const ops = weightPatch(vs, t, stableWeight, canaryWeight);
      if (ops.length > 0) await this.patch(VIRTUAL_SERVICES, t, vs.metadata.name, ops, 'high');
    }
  }

  async getRoutes(t: RouteTarget): Promise<Routes | undefined> {
    const objs = await this.servicesFor(t);
    this.remember(`${t.namespace}/${t.name}`, objs);
    const found = objs.map((vs) => readWeights(vs, t)).filter((w): w is Routes => w !== undefined);
    if (found.length === 0) return undefined;
    const first = found[0]!;
    return found.every((w) => w.stable === first.stable && w.canary === first.canary) ? first : { stable: -1, canary: -1 };
  }

  /**
   * Kept for the setRoutes() of the same reconcile only (2 s): most reads are not followed by one
   * (idle Deployments are looked at too), so old entries are dropped rather than kept per Deployment ever seen.
   */
  private remember(key: string, objs: ApiObject[]): void {
    const now = Date.now();
    if (this.lastRead.size >= LAST_READ_SWEEP) for (const [k, v] of this.lastRead) if (now - v.at >= LAST_READ_MS) this.lastRead.delete(k);
    this.lastRead.set(key, { at: now, objs });
  }

  /** Gives an orphaned generated object to the Deployment (see ownerOps); leaves any other alone. */
  private async adopt(gvr: Gvr, t: RouteTarget, o: ApiObject): Promise<void> {
    const ops = ownerOps(o, t);
    if (ops.length > 0) await this.patch(gvr, t, o.metadata.name, [unchangedSince(o), ...ops]);
  }

  /** A JSON patch whose result the watch cache learns at once (a later read must not see the old object). */
  private async patch(gvr: Gvr, t: RouteTarget, name: string, ops: Operation[], priority?: Priority): Promise<void> {
    // (Not `cache?.remember(..., await patch())`: optional chaining would skip the patch itself.)
    const patched = await this.client.jsonPatch(gvr, t.namespace, name, ops, priority);
    this.cache?.remember(gvr, t.namespace, patched);
  }

  private async createOrExplain(gvr: Gvr, t: RouteTarget, body: ApiObject, kind: string, routes: (o: ApiObject, t: RouteTarget) => boolean, renamed = false): Promise<void> {
    const name = body.metadata.name;
    try {
      const created = await this.client.create(gvr, t.namespace, body);
      this.cache?.remember(gvr, t.namespace, created);
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
      // Ours from an earlier reconcile that the cache has not seen yet, or somebody else's.
      const existing = await this.client.get(gvr, t.namespace, name);
      if (routes(existing, t)) {
        this.cache?.remember(gvr, t.namespace, existing);
        await this.adopt(gvr, t, existing);
        return;
      }
      // Generated by us for this Deployment when it routed another Service (kube-canary.io/service
      // changed since), and nobody else's: rewritten for the Service it routes now.
      if (generatedFor(existing, t) && owners(existing).every((r) => r.uid === t.owner.uid)) {
        await this.patch(gvr, t, name, [unchangedSince(existing), { op: 'add', path: '/spec', value: body.spec }, ...ownerOps(existing, t)], 'normal');
        return;
      }
      // Generated for another Deployment's Service (behind which this one may have been too, or
      // a Deployment of the name that routes another Service): theirs. This one's routes get a
      // name of their own, and only once they exist does it let go of the other object.
      if (!renamed && generated(existing)) {
        await this.createOrExplain(gvr, t, { ...body, metadata: { ...body.metadata, name: `${name}-${t.service}` } }, kind, routes, true);
        const mine = owners(existing).findIndex((r) => r.uid === t.owner.uid);
        if (mine >= 0) await this.patch(gvr, t, name, [unchangedSince(existing), { op: 'remove', path: `/metadata/ownerReferences/${mine}` }], 'normal');
        return;
      }
      throw new Error(`a ${kind} named ${name} already exists in ${t.namespace} but does not route ${t.service}; rename it or set kube-canary.io/service`);
    }
  }

}
