/**
 * Traffic providers, modelled on Flagger's pkg/router: one interface, one file per mesh or API.
 * A provider owns the routing objects for one release target and nothing else; the progressor
 * only ever says "make sure routing exists", "route these weights" and "what is routed now".
 */
import type { V1OwnerReference } from '@kubernetes/client-node';

export interface RouteTarget {
  namespace: string;
  /** The stable Deployment; its canary is `<name>-canary`. */
  name: string;
  /** The Service whose host is routed (kube-canary.io/service, default the Deployment's name). */
  service: string;
  /** Pod label that tells stable from canary pods (`version` by default). */
  trackLabel: string;
  /** Generated routing objects are owned by the stable Deployment, so they go with it. */
  owner: V1OwnerReference;
}

export interface Routes {
  stable: number;
  canary: number;
}

export interface TrafficProvider {
  readonly name: string;
  /** Ensure the routing objects exist (generate them when absent, own generated ones left without an owner); never changes weights of existing routes. */
  reconcile(target: RouteTarget): Promise<void>;
  /** Route `stableWeight`/`canaryWeight` percent (they add up to 100), changing nothing else. */
  setRoutes(target: RouteTarget, stableWeight: number, canaryWeight: number): Promise<void>;
  /** The weights routed now; undefined when there are no routing objects yet. */
  getRoutes(target: RouteTarget): Promise<Routes | undefined>;
}
