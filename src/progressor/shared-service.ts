/**
 * One release at a time per routed Service. Two opted-in Deployments behind one Service (both
 * with kube-canary.io/service naming it) would both write its routes, each undoing the other's
 * weights, and the canary subset would select both canaries. The release that started first
 * routes the Service; a later one waits until it ends (step(): heldBy).
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { ANN_REVISION, ANN_SERVICE, ANN_STATUS } from '../config/contract.js';
import { parseStatus } from '../config/status.js';

/** The Service a Deployment's release routes: its annotation, or the Deployment's name. */
export function routedService(d: V1Deployment): string {
  return d.metadata?.annotations?.[ANN_SERVICE] ?? d.metadata!.name!;
}

/** When the release in progress on `d` started (its status), or +Infinity when none has started yet. */
function startedAt(d: V1Deployment): number {
  const ann = d.metadata?.annotations ?? {};
  const s = parseStatus(ann[ANN_STATUS]);
  const t = s && s.revision === ann[ANN_REVISION] ? Date.parse(s.startedAt) : NaN;
  return Number.isFinite(t) ? t : Infinity;
}

/**
 * The name of the Deployment whose release routes `me`'s Service, when that is not `me`: of the
 * releases in progress on that Service (`others`: the opted-in Deployments of the namespace),
 * the one that started first, ties by name, so that every release sees the same order.
 */
export function routeHolder(me: V1Deployment, others: Iterable<V1Deployment>): string | undefined {
  const service = routedService(me);
  const key = (d: V1Deployment): [number, string] => [startedAt(d), d.metadata!.name!];
  let first: [number, string] = key(me);
  for (const d of others) {
    if (d.metadata?.name === me.metadata?.name || d.metadata?.annotations?.[ANN_REVISION] === undefined || d.metadata?.deletionTimestamp) continue;
    if (routedService(d) !== service) continue;
    const k = key(d);
    if (k[0] < first[0] || (k[0] === first[0] && k[1] < first[1])) first = k;
  }
  return first[1] === me.metadata!.name ? undefined : first[1];
}
