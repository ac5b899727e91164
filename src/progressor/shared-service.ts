/**
 * One release at a time per routed Service. Two opted-in Deployments behind one Service (both
 * with kube-canary.io/service naming it) would both write its routes, each undoing the other's
 * weights, and the canary subset would select both canaries. The release that started first
 * routes the Service; a later one waits until it ends (step(): heldBy).
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { ANN_REVISION, ANN_SERVICE, ANN_STATUS } from '../config/contract.js';
import { isTerminal, parseStatus } from '../config/status.js';

/** The Service a Deployment's release routes: its annotation, or the Deployment's name. */
export function routedService(d: V1Deployment): string {
  return d.metadata?.annotations?.[ANN_SERVICE] ?? d.metadata!.name!;
}

/**
 * The rank of `d`'s release for its Service: since when it routes it (status.routing, stamped when
 * it first set routes unhindered, kept through a new revision mid-release); +Infinity when it
 * routes nothing: not started, waiting for another, ended, or routing another Service before its
 * kube-canary.io/service changed.
 */
function rank(d: V1Deployment): number {
  const s = parseStatus(d.metadata?.annotations?.[ANN_STATUS]);
  if (!s || isTerminal(s.phase) || s.routing?.service !== routedService(d)) return Infinity;
  const t = Date.parse(s.routing.since);
  return Number.isFinite(t) ? t : Infinity;
}

const inProgress = (d: V1Deployment) => d.metadata?.annotations?.[ANN_REVISION] !== undefined && !d.metadata?.deletionTimestamp;

/**
 * The name of the Deployment whose release routes `me`'s Service, when that is not `me`: of the
 * releases in progress on that Service (`others`: the opted-in Deployments of the namespace; `me`
 * counts only while its own release is in progress), the one that started routing first, ties by
 * name, so that every release sees the same order. For a Deployment with no release in progress
 * (idle, opted out, deleted), any other release on its Service is the holder: its routes are not
 * this one's to set back.
 */
export function routeHolder(me: V1Deployment, others: Iterable<V1Deployment>): string | undefined {
  const service = routedService(me);
  const name = me.metadata!.name!;
  // `me` takes part while its release is in progress, or while it still routes (its revision
  // annotation removed by hand, being deleted): its routes are its own to set back then.
  const mine = rank(me);
  let first: [number, string] | undefined = inProgress(me) || Number.isFinite(mine) ? [mine, name] : undefined;
  for (const d of others) {
    if (d.metadata?.name === name || !inProgress(d) || routedService(d) !== service) continue;
    const k: [number, string] = [rank(d), d.metadata!.name!];
    if (!first || k[0] < first[0] || (k[0] === first[0] && k[1] < first[1])) first = k;
  }
  return first && first[1] !== name ? first[1] : undefined;
}
