/**
 * The admission decision: a pure function of the AdmissionRequest and the webhook's own
 * configuration. It never reads or writes the API (ARCHITECTURE.md: the webhook *captures* the
 * release in the object being written; the progressor acts on the persisted object).
 */
import type { V1Deployment, V1PodTemplateSpec } from '@kubernetes/client-node';
import type { Operation } from 'fast-json-patch';
import { describeAnalysis } from '../config/analysis.js';
import { cut } from '../config/show.js';
import {
  ANN_FAILED_REVISION,
  ANN_REQUEST,
  ANN_REVISION,
  ANN_SERVICE,
  ANN_SKIP_ANALYSIS,
  ANN_STABLE_REVISION,
  ANN_STATUS,
  LABEL_ENABLED,
  PREFIX,
  TRACK_CANARY,
  TRACK_STABLE,
  canaryName,
} from '../config/contract.js';
import { type ClusterDefaults, deploymentNameProblem, isReleaseRequest, parseConfigAnnotations, type ReleaseConfig, sameConfigAnnotations } from '../config/release-config.js';
import { isTerminal, parseStatus } from '../config/status.js';
import { templateHash } from '../config/template-hash.js';
import { mapPatch } from '../kube/json-patch.js';
import { type OptInSource, neverManaged, scopeOf, wasOptedIn } from './filters.js';
import { deploymentShapeProblem } from './shape.js';
import type { AdmissionRequest, AdmissionResponse } from './review.js';

export interface WebhookConfig {
  /** Pod label key that separates stable and canary pods (`version` by default). */
  trackLabel: string;
  /** Usernames (from request.userInfo) of the progressor; their writes pass untouched. */
  progressorUsers: string[];
  /** kube-canary's own namespace, never managed. */
  ownNamespace: string;
  defaults: ClusterDefaults;
}

export type Outcome = 'allowed' | 'patched' | 'denied';

export interface Decision {
  outcome: Outcome;
  /** Why, for logs and tests; users see `response.status.message` or `response.warnings`. */
  reason: string;
  response: AdmissionResponse;
  /** The JSON Patch that `response.patch` carries, for tests and logs. */
  patch: Operation[];
}

/** Annotations that mark a release in progress; a user's rewrite of the object must not drop them. */
const IN_PROGRESS_ANNOTATIONS = [ANN_REVISION, ANN_STABLE_REVISION, ANN_STATUS];

export function decide(req: AdmissionRequest, source: OptInSource, config: WebhookConfig): Decision {
  const allow = (reason: string, warnings: string[] = []): Decision => ({
    outcome: 'allowed',
    reason,
    patch: [],
    response: { uid: req.uid, allowed: true, ...(warnings.length ? { warnings: clipped(warnings) } : {}) },
  });
  const deny = (code: number, message: string): Decision => ({
    outcome: 'denied',
    reason: message,
    patch: [],
    response: { uid: req.uid, allowed: false, status: { code, message, reason: code === 403 ? 'Forbidden' : 'BadRequest' } },
  });

  if (req.subResource) return allow(`subresource ${req.subResource} does not change the pod template`);
  if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') return allow(`${req.operation} is not handled`);
  const k = req.kind;
  if (k.group !== 'apps' || k.version !== 'v1' || k.kind !== 'Deployment') {
    return deny(
      400,
      `kube-canary handles apps/v1 Deployments only, got ${k.group ? `${k.group}/` : ''}${k.version} ${k.kind}; the MutatingWebhookConfiguration's rules should select only apps/v1 deployments`,
    );
  }
  const obj = req.object as V1Deployment | undefined;
  if (!isDeployment(obj)) return deny(400, `request.object is not an apps/v1 Deployment (apiVersion ${JSON.stringify((req.object as V1Deployment | undefined)?.apiVersion)}, kind ${JSON.stringify((req.object as V1Deployment | undefined)?.kind)})`);
  const name = obj.metadata?.name || req.name || '';
  const namespace = req.namespace ?? obj.metadata?.namespace ?? '';
  // generateName: the apiserver names the object after admission.
  const ref = `${namespace}/${name || `${obj.metadata?.generateName ?? ''}(name not generated yet)`}`;
  const shape = deploymentShapeProblem(obj as unknown as Record<string, unknown>, 'request.object');
  if (shape) return deny(400, malformed(ref, shape));
  if (!obj.spec?.template) return deny(400, `Deployment ${ref} has no spec.template; a Deployment needs a pod template`);
  const old = req.oldObject as V1Deployment | undefined;
  if (req.operation === 'UPDATE' && !isDeployment(old)) return deny(400, `UPDATE of Deployment ${ref} came without an apps/v1 Deployment in request.oldObject`);
  const oldShape = old && deploymentShapeProblem(old as unknown as Record<string, unknown>, 'request.oldObject');
  if (oldShape) return deny(400, malformed(ref, oldShape));
  // Deletion in progress (finalizers being removed, e.g. by the garbage collector): there is no
  // release to start, and refusing the update would leave the Deployment terminating for good.
  // The stored object says so (a CREATE's or a PUT's own deletionTimestamp is the client's, and dropped).
  if (req.operation === 'UPDATE' && old?.metadata?.deletionTimestamp) return allow('being deleted');

  const byProgressor = req.userInfo.username !== undefined && config.progressorUsers.includes(req.userInfo.username);
  // Checked before the opt-in: on /mutate a "True" would otherwise just read as "not opted in",
  // and taking a Deployment out with a typo (or in, in the webhook configuration's eyes) would go unnoticed.
  const enabled = obj.metadata?.labels?.[LABEL_ENABLED];
  const enabledProblem =
    enabled !== undefined && enabled !== 'true' && enabled !== 'false'
      ? `label ${LABEL_ENABLED}=${JSON.stringify(enabled)} is neither "true" nor "false"; set it to "false" to opt the Deployment out, or to "true" (or leave it out, in an opted-in Namespace) to opt it in`
      : undefined;
  if (enabledProblem && !byProgressor && old?.metadata?.labels?.[LABEL_ENABLED] !== enabled && !neverManaged(obj, namespace, config.ownNamespace)) {
    return deny(400, `Deployment ${ref}: ${enabledProblem}`);
  }
  const scope = scopeOf(obj, namespace, source, config.ownNamespace);
  if (!scope.inScope) {
    // Opting out mid-release would hide the paused Deployment from the progressor for good.
    const release = old?.metadata?.annotations?.[ANN_REVISION];
    if (release !== undefined && !byProgressor && scopeOf(old!, namespace, source, config.ownNamespace).inScope) {
      return deny(
        403,
        `Deployment ${ref} has a canary release of revision ${release} in progress; opting it out now would leave it paused with nobody to finish the release. Let the release finish (kubectl describe deployment ${name} -n ${namespace}) or end it with "kubectl canary promote|abort ${name} -n ${namespace}" (without the plugin: kubectl annotate deployment ${name} -n ${namespace} ${ANN_REQUEST}=promote, or =abort), then opt out`,
      );
    }
    // A typo stored before (on the label entry nothing is managed but "true"): said, not acted on.
    const warning = enabledProblem && !neverManaged(obj, namespace, config.ownNamespace) ? [`kube-canary: ${ref} is not opted in: ${enabledProblem}`] : [];
    return allow(scope.reason, warning);
  }
  if (byProgressor) return allow('written by the progressor');

  const parsed = parseConfigAnnotations(name, obj.metadata?.annotations, config.defaults);
  // A name that cannot have a release does not keep the Deployment from being created or updated
  // (the name cannot change), only its new templates from being released; unless this update
  // brought the problem, by taking kube-canary.io/service away: that is configuration, refused.
  const nameProblem = deploymentNameProblem(name, obj.metadata?.annotations?.[ANN_SERVICE]);
  const nameProblemIsNew = nameProblem !== undefined && req.operation === 'UPDATE' && !deploymentNameProblem(name, old?.metadata?.annotations?.[ANN_SERVICE]);
  const configErrors = [...(nameProblemIsNew ? [nameProblem.message] : []), ...(parsed.ok ? [] : parsed.errors)];
  const selectorProblem = trackSelectorProblem(obj, config.trackLabel);
  // A problem this update did not bring (stored while the webhook was away, or valid under another
  // kube-canary version or cluster default; the selector cannot change at all) must not block
  // updates that ship no new revision: scaling, labels, the garbage collector's finalizers.
  const storedOn = req.operation === 'UPDATE' && scopeOf(old!, namespace, source, config.ownNamespace).inScope;
  // Each problem as the denial says it, and in parts short enough for admission warnings (once
  // all of a response's warnings pass 4 KB, the apiserver cuts each to 256 characters).
  const problems: Array<{ message: string; parts: string[] }> = [];
  if (configErrors.length > 0) {
    const problem = `kube-canary configuration of Deployment ${ref} is invalid: ${configErrors.join('; ')}`;
    // A request (promote, abort, ...) is not configuration: it passes like any other update, and the
    // progressor answers it (while the configuration is invalid, with why it cannot act yet); a
    // bad value of one is still refused.
    const request = obj.metadata?.annotations?.[ANN_REQUEST];
    const badNewRequest = request !== undefined && request !== old?.metadata?.annotations?.[ANN_REQUEST] && !isReleaseRequest(request);
    if (!storedOn || badNewRequest || !sameConfigAnnotations(old!.metadata?.annotations, obj.metadata?.annotations)) return deny(400, problem);
    problems.push({ message: problem, parts: configErrors });
  }
  if (selectorProblem) {
    const problem = `Deployment ${ref}: ${selectorProblem}`;
    // Only a new Deployment can still take it out of its selector.
    if (!storedOn) return deny(400, req.operation === 'CREATE' ? problem : `${problem}; ${wayOut('selector', false, name, namespace)}`);
    problems.push({ message: problem, parts: [selectorProblem] });
  }
  if (nameProblem && !nameProblemIsNew) problems.push({ message: `Deployment ${ref}: ${nameProblem.message}`, parts: [nameProblem.message] });
  // A stored bad value (a new one is denied above): in an opted-in Namespace anything but "false"
  // leaves a Deployment in, so it is still managed, but "False" or "no" meant as an opt-out would
  // get canaries nobody asked for.
  if (enabledProblem) problems.push({ message: `Deployment ${ref}: ${enabledProblem}`, parts: [enabledProblem] });

  const mutated = mutableCopy(obj);
  const warnings: string[] = [];
  const result = (reason: string): Decision => patched(req.uid, obj, mutated, reason, warnings);

  if (req.operation === 'CREATE') {
    // failed-revision too: the failure was another object's (and its status, which says when and why, goes).
    const stale = [...IN_PROGRESS_ANNOTATIONS, ANN_FAILED_REVISION].filter((a) => mutated.metadata?.annotations?.[a] !== undefined);
    for (const a of stale) delete mutated.metadata!.annotations![a];
    if (stale.length) warnings.push(`kube-canary: removed ${stale.map((a) => a.slice(PREFIX.length)).join(', ')} (kube-canary.io/) from the new Deployment ${name}: they describe a release of another object`);
    // A copy of a Deployment that kube-canary had paused mid-release (a restore, a re-apply of
    // `get -o yaml`): with the release gone nothing would ever unpause it, and a Deployment created
    // paused runs no pods at all. (`status` alone stays on any Deployment that had a release; a
    // pause next to it is the user's own.)
    const copiedRevision = obj.metadata?.annotations?.[ANN_REVISION];
    if (copiedRevision !== undefined && obj.spec.paused === true) {
      mutated.spec!.paused = false;
      warnings.push(`kube-canary: unpaused the new Deployment ${ref}, paused for the release of ${copiedRevision}: that revision now rolls out without its analysis having finished`);
    }
    ensureTrack(mutated.spec!.template, config.trackLabel, warnings);
    if (problems.length > 0) warnings.push(...letThrough(ref, problems));
    return result('created: stable track label ensured');
  }

  const oldAnn = old!.metadata?.annotations ?? {};
  const inProgress = oldAnn[ANN_REVISION] !== undefined;
  const moved = routedServiceMoved(name, oldAnn, obj.metadata?.annotations ?? {});
  if (moved) {
    return deny(
      403,
      `Deployment ${ref} has a canary release of revision ${moved.revision} in progress that sends ${moved.weight}% of Service ${moved.from}'s traffic to ${canaryName(name)}; changing the routed Service to ${moved.to} now would leave ${moved.from}'s routes sending that share to the canary, also after the release ends and the canary is deleted. Let the release finish (kubectl describe deployment ${name} -n ${namespace}) or end it with "kubectl canary promote|abort ${name} -n ${namespace}" (without the plugin: kubectl annotate deployment ${name} -n ${namespace} ${ANN_REQUEST}=promote, or =abort), then change ${ANN_SERVICE}`,
    );
  }
  keepManaged(oldAnn, mutated, ref, warnings);

  const newHash = templateHash(obj.spec.template, config.trackLabel);
  const oldHash = templateHash(old!.spec?.template, config.trackLabel);

  // A new template while paused is captured (paused again) below; only the same template unpaused is an unpause.
  if (inProgress && old!.spec?.paused === true && obj.spec?.paused !== true && newHash === oldHash) {
    // `paused: false` is left out of a serialized Deployment, so a rewrite of the whole object
    // (kubectl replace, helm upgrade --force, Argo CD Replace=true) looks like an unpause. It also
    // drops the release's revision, which an unpause (kubectl rollout resume) keeps: put the pause
    // back like the annotations.
    // The revision annotation decides: `status` also stays in manifests exported after an earlier release.
    if (obj.metadata?.annotations?.[ANN_REVISION] !== undefined) {
      // After a revert the revision is the stable one: the progressor is winding the cancelled release up.
      const release = oldAnn[ANN_REVISION] === oldAnn[ANN_STABLE_REVISION] ? `the cancelled canary release is wound up (traffic back to stable, canary removed)` : `the canary release of revision ${oldAnn[ANN_REVISION]} is in progress`;
      return deny(
        403,
        `Deployment ${ref} is paused by kube-canary while ${release}; unpausing it by hand would skip the analysis. Use "kubectl canary promote ${name} -n ${namespace}" to promote now, or "kubectl canary abort ${name} -n ${namespace}" to roll back (without the plugin: kubectl annotate deployment ${name} -n ${namespace} ${ANN_REQUEST}=promote, or =abort; kubectl rollout undo also needs the release ended first). A manifest or chart that sets spec.paused: false does this on every apply: leave the field out, kube-canary sets it on opted-in Deployments`,
      );
    }
    mutated.spec!.paused = true;
  }
  if (problems.length > 0) {
    const message = problems.map((p) => p.message).join('; ').replace(/\.$/, '');
    if (newHash !== oldHash) return deny(400, `${message}. This update ships a new pod template, which kube-canary cannot release until that is fixed: ${wayOut(selectorProblem ? 'selector' : nameProblem?.fix === 'rename' ? 'name' : undefined, inProgress, name, namespace)}`);
    // No new revision: it goes through with what kube-canary keeps on every update (the release
    // annotations, and the track label unless the selector is the problem: it needs its own value).
    if (!selectorProblem) {
      ensureTrack(mutated.spec!.template, config.trackLabel, warnings);
      if (old!.spec?.template?.metadata?.labels?.[config.trackLabel] !== TRACK_STABLE) warnings.push(restartWarning(ref, config.trackLabel));
    }
    warnings.push(...letThrough(ref, problems));
    return result('stored configuration problem; no new revision');
  }
  const runningTracked = old!.spec?.template?.metadata?.labels?.[config.trackLabel] === TRACK_STABLE;
  const optIn = !wasOptedIn(old, source) || !runningTracked;
  if (optIn) {
    ensureTrack(mutated.spec!.template, config.trackLabel, warnings);
    if (newHash !== oldHash) {
      warnings.push(`kube-canary: ${ref} is being opted in with this update, so this rollout is not a canary (the running pods do not carry ${config.trackLabel}=${TRACK_STABLE} yet); the next template change will be`);
    } else if (!runningTracked) {
      warnings.push(restartWarning(ref, config.trackLabel));
    }
    return result('opt-in: stable track label ensured');
  }
  if (newHash === oldHash) {
    ensureTrack(mutated.spec!.template, config.trackLabel, warnings);
    // Taking it off is allowed (that is how a failed revision is shipped again by hand), but a
    // rewrite of the whole object can drop it without anyone meaning to: say so.
    const failed = oldAnn[ANN_FAILED_REVISION];
    if (failed !== undefined && obj.metadata?.annotations?.[ANN_FAILED_REVISION] === undefined) {
      warnings.push(`kube-canary: ${ANN_FAILED_REVISION} ${failed} is removed from ${ref}, so that revision can be shipped again without a retry`);
    }
    return result('no template change');
  }

  if (oldAnn[ANN_FAILED_REVISION] === newHash) return deny(403, failedRevisionMessage(ref, name, namespace, newHash, oldAnn));
  // A rewrite of the whole object (kubectl replace) that ships a new template must not forget
  // which revision failed; taking the annotation off alone (kubectl annotate ...-) still can.
  if (oldAnn[ANN_FAILED_REVISION] !== undefined && mutated.metadata?.annotations?.[ANN_FAILED_REVISION] === undefined) {
    mutated.metadata!.annotations = { ...mutated.metadata!.annotations, [ANN_FAILED_REVISION]: oldAnn[ANN_FAILED_REVISION] };
  }
  // No ReplicaSet runs the stored template (created paused, or updated before the Deployment
  // controller's first sync): as on CREATE there is nothing to compare a canary against, and no
  // revision a rollback could return to.
  if (!inProgress && !hasRolledOut(old!)) {
    ensureTrack(mutated.spec!.template, config.trackLabel, warnings);
    const why = old!.spec?.paused === true ? 'it has been paused since it was created' : 'the Deployment controller has not acted on it yet';
    warnings.push(`kube-canary: ${ref} has not rolled out yet (${why}), so this template change is not a canary: no pods run the template before it. The first template change after it has rolled out will be`);
    return result('never rolled out: no canary');
  }

  // A promotion rolling the stable Deployment onto the revision that passed: a new template is
  // released against that revision, and one that fails returns to it, not to the one before.
  // Going back to the old revision is still a cancel (the quick way out of a bad promotion).
  const promoting = promotionUnderWay(old!, oldAnn, oldHash) && newHash !== oldAnn[ANN_STABLE_REVISION];
  const stableRevision = inProgress && !promoting ? (oldAnn[ANN_STABLE_REVISION] ?? oldHash) : oldHash;
  if (promoting) {
    warnings.push(`kube-canary: the promotion of ${oldHash} stops where it is (some pods may still run ${oldAnn[ANN_STABLE_REVISION]}); ${oldHash} is the stable revision now`);
  }
  ensureTrack(mutated.spec!.template, config.trackLabel, warnings);
  // promote or abort written together with a new template: `kubectl rollout undo` copies the
  // annotations of an old ReplicaSet, onto which the Deployment controller copied a request made
  // back then; it would end this release unasked. Both are for a release under way; pause (ship
  // and hold) may come with its template. One already pending stays: it was asked for.
  const request = mutated.metadata?.annotations?.[ANN_REQUEST];
  if ((request === 'promote' || request === 'abort') && request !== oldAnn[ANN_REQUEST]) {
    delete mutated.metadata!.annotations![ANN_REQUEST];
    // Back on the running revision there is no release left to ask anything of (said below).
    const again = newHash === stableRevision ? '' : '; ask again once the release has started';
    warnings.push(`kube-canary: removed ${ANN_REQUEST}=${request} that came with the new template of ${name} (kubectl rollout undo copies an old one from a ReplicaSet)${again}`);
  }
  // Paused by hand (kubectl rollout pause to batch edits): the release starts now, and its end unpauses.
  if (old!.spec?.paused === true && !inProgress) {
    warnings.push(`kube-canary: ${name} was paused by hand; its canary release starts now, and promotion or rollback unpauses it (changes made in one update are one release)`);
  }
  mutated.spec!.paused = true;
  mutated.metadata!.annotations = { ...mutated.metadata!.annotations, [ANN_REVISION]: newHash, [ANN_STABLE_REVISION]: stableRevision };
  if (newHash === stableRevision) {
    warnings.push(`kube-canary: ${ref} is back on the running revision ${stableRevision}; the canary release of ${oldAnn[ANN_REVISION]} is cancelled and traffic returns to stable`);
    return result('reverted to the stable revision mid-release');
  }
  if (!parsed.ok) throw new Error('unreachable: an invalid configuration is denied above'); // narrows for the compiler
  // Replaced: a release whose analysis was running (not one being promoted, nor a revert just cancelled).
  const replaced = inProgress && !promoting && oldAnn[ANN_REVISION] !== stableRevision ? oldAnn[ANN_REVISION] : undefined;
  warnings.push(...captureWarnings(name, namespace, newHash, stableRevision, parsed.value, replaced));
  return result(`new revision ${newHash} captured (stable ${stableRevision})`);
}

/**
 * A copy in which exactly the parts the decision may change (metadata, its annotations, spec,
 * the template's metadata and labels) are fresh objects; the rest is shared with the request,
 * which is never modified. Cheaper than a deep clone on the hot path; patchOf compares exactly these parts.
 */
function mutableCopy(d: V1Deployment): V1Deployment {
  const template = d.spec!.template;
  return {
    ...d,
    metadata: { ...d.metadata, ...(d.metadata?.annotations ? { annotations: { ...d.metadata.annotations } } : {}) },
    spec: {
      ...d.spec!,
      template: { ...template, metadata: { ...template.metadata, ...(template.metadata?.labels ? { labels: { ...template.metadata.labels } } : {}) } },
    },
  };
}

/**
 * Whether the stable Deployment is being promoted onto the revision it carries, far enough that
 * the revision's ReplicaSet exists (a rollback to it needs one): the progressor's status says
 * Promoting or Finalising for that revision, and in Promoting the controller has seen the
 * unpaused Deployment and started updating pods. Anything else (a rollback under way, a pause by
 * hand, a controller that has not acted yet) keeps the stored stable revision.
 */
function promotionUnderWay(old: V1Deployment, oldAnn: Record<string, string>, oldHash: string): boolean {
  const status = parseStatus(oldAnn[ANN_STATUS]);
  if (oldAnn[ANN_REVISION] !== oldHash || oldHash === oldAnn[ANN_STABLE_REVISION] || status?.revision !== oldHash) return false;
  if (status.phase === 'Finalising') return true;
  const seen = (old.status?.observedGeneration ?? 0) >= (old.metadata?.generation ?? Number.MAX_SAFE_INTEGER);
  return status.phase === 'Promoting' && old.spec?.paused !== true && seen && (old.status?.updatedReplicas ?? 0) > 0;
}

/**
 * The routed Service changing (kube-canary.io/service set, changed or dropped) while the canary
 * has traffic: the progressor routes only the Service the annotation names now, so the routes of
 * the one before would keep the canary's share for good, and send it to pods that are gone once
 * the release ends. Before the first weight nothing is routed to the canary yet: changing it then
 * is how a release held by a missing Service (a typo) is put right.
 */
function routedServiceMoved(name: string, oldAnn: Record<string, string>, ann: Record<string, string>): { revision: string; weight: number; from: string; to: string } | undefined {
  const revision = oldAnn[ANN_REVISION];
  const from = oldAnn[ANN_SERVICE] ?? name;
  const to = ann[ANN_SERVICE] ?? name;
  if (revision === undefined || from === to) return undefined;
  const status = parseStatus(oldAnn[ANN_STATUS]);
  if (!status || status.revision !== revision || isTerminal(status.phase) || status.weight <= 0) return undefined;
  return { revision, weight: status.weight, from, to };
}

/** How to ship a template past a stored problem; `immutable`: what the problem is in, if it cannot be changed. */
function wayOut(immutable: 'selector' | 'name' | undefined, inProgress: boolean, name: string, namespace: string): string {
  const optOut = `opt the Deployment out (label ${LABEL_ENABLED}=false) to roll out without a canary`;
  if (immutable === 'selector') return `a selector cannot be changed, so recreate the Deployment without the track label key in spec.selector, or ${optOut}`;
  if (immutable === 'name') return `a name cannot be changed, so recreate the Deployment under a name of at most 63 characters, or ${optOut}`;
  // Opting out is refused mid-release, and the progressor holds the release (requests too) until the configuration is fixed.
  if (inProgress) return `fix it in the same update; the release in progress is on hold until it is fixed (kubectl describe deployment ${name} -n ${namespace})`;
  return `fix it in the same update, or ${optOut}`;
}

/** What a Deployment gets when a problem stored on it does not block this update. */
function letThrough(ref: string, problems: Array<{ parts: string[] }>): string[] {
  return [`kube-canary: ${ref} is let through, but a new pod template will be refused until this is fixed:`, ...problems.flatMap((p) => p.parts.map((x) => `kube-canary: ${x}`))];
}

function restartWarning(ref: string, trackLabel: string): string {
  return `kube-canary: ${ref} is opted in and its running pods do not carry ${trackLabel}=${TRACK_STABLE}: the pod template gets it, so its pods are replaced once (the same version, restarted); the next template change is a canary`;
}

function malformed(ref: string, problem: string): string {
  return `Deployment ${ref}: ${problem}. The apiserver never sends this; the request was made or changed by hand`;
}

/**
 * Whether the Deployment controller has ever rolled the Deployment out: it stamps the revision
 * annotation with its first ReplicaSet, which a paused Deployment never gets.
 */
function hasRolledOut(d: V1Deployment): boolean {
  return d.metadata?.annotations?.[K8S_REVISION] !== undefined;
}
const K8S_REVISION = 'deployment.kubernetes.io/revision';

function isDeployment(o: unknown): o is V1Deployment {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return false;
  const d = o as V1Deployment;
  // The apiserver always sends apiVersion and kind on admission objects; tolerate their absence only together.
  return (d.apiVersion === undefined && d.kind === undefined) || (d.apiVersion === 'apps/v1' && d.kind === 'Deployment');
}

function ensureTrack(template: V1PodTemplateSpec, key: string, warnings: string[]): void {
  template.metadata ??= {};
  template.metadata.labels ??= {};
  const current = template.metadata.labels[key];
  if (current !== undefined && current !== TRACK_STABLE) {
    warnings.push(`kube-canary: pod label ${key}=${current} replaced by ${key}=${TRACK_STABLE}; kube-canary owns the ${key} label (set the webhook's --track-label to use another key)`);
  }
  template.metadata.labels[key] = TRACK_STABLE;
}

function trackSelectorProblem(d: V1Deployment, key: string): string | undefined {
  const sel = d.spec?.selector;
  const value = sel?.matchLabels?.[key];
  if ((value !== undefined && value !== TRACK_STABLE) || (Array.isArray(sel?.matchExpressions) && sel.matchExpressions.some((e) => e?.key === key && !selectsStableOnly(e)))) {
    return `spec.selector uses the track label key "${key}"${value !== undefined ? ` (${key}=${value})` : ''}, which kube-canary sets to ${TRACK_STABLE}/canary on the pods; remove it from the selector, or configure the webhook and progressor with another --track-label`;
  }
  return undefined;
}

/**
 * Whether a selector expression on the track label key selects what `version: stable` in
 * matchLabels does (accepted the same way): stable pods, never canary ones.
 */
function selectsStableOnly(e: { operator?: unknown; values?: unknown }): boolean {
  const values = Array.isArray(e.values) ? e.values : [];
  if (e.operator === 'In') return values.length > 0 && values.every((v) => v === TRACK_STABLE);
  if (e.operator === 'NotIn') return values.includes(TRACK_CANARY);
  return false;
}

/**
 * The annotations that describe a release (revision, stable-revision, status) are written by the
 * webhook and the progressor only: a user's update keeps the values they had. One dropped by a
 * rewrite of the whole object (kubectl replace, some GitOps tools) is put back silently; one
 * added or changed by hand is undone with a warning, since it would make kube-canary act on a
 * release that does not exist.
 */
function keepManaged(oldAnn: Record<string, string>, mutated: V1Deployment, ref: string, warnings: string[]): void {
  const ann = { ...mutated.metadata!.annotations };
  const undone: string[] = [];
  for (const a of IN_PROGRESS_ANNOTATIONS) {
    const kept = oldAnn[a];
    if (ann[a] === kept) continue;
    if (ann[a] !== undefined) undone.push(a);
    if (kept === undefined) delete ann[a];
    else ann[a] = kept;
  }
  if (Object.keys(ann).length > 0 || mutated.metadata!.annotations) mutated.metadata!.annotations = ann;
  if (undone.length > 0) {
    warnings.push(`kube-canary: ${undone.join(', ')} of ${ref} ${undone.length > 1 ? 'are' : 'is'} kube-canary's own and ${undone.length > 1 ? 'were' : 'was'} left as before; steer a release with ${ANN_REQUEST} (promote, abort, pause, resume or retry)`);
  }
}

function failedRevisionMessage(ref: string, name: string, namespace: string, rev: string, oldAnn: Record<string, string>): string {
  const status = parseStatus(oldAnn[ANN_STATUS]);
  // The status is about the last release; a later one keeps the failure's record (status.failure).
  const failure = status?.failure?.revision === rev ? status.failure : status && status.revision === rev && status.phase === 'Failed' ? { at: status.lastTransitionAt, message: status.message } : undefined;
  const detail = failure ? ` at ${failure.at || 'an earlier time'}: ${failure.message || 'no reason recorded'}` : '';
  return `revision ${rev} of Deployment ${ref} failed its canary analysis${detail}. It is not shipped again by accident: to retry it, run "kubectl canary retry ${name} -n ${namespace}" (or: kubectl annotate deployment ${name} -n ${namespace} ${ANN_REQUEST}=retry) and apply it again`;
}

function captureWarnings(name: string, namespace: string, rev: string, stable: string, cfg: ReleaseConfig, replaced?: string): string[] {
  const canary = canaryName(name);
  return [
    // The name alone (the namespace is the request's): with both at their longest (63) the line stays within 256 characters (see problems above).
    `kube-canary: captured revision ${rev} of ${name} as a canary release${replaced ? `, replacing ${replaced} (analysis restarts)` : ''}; the running pods stay on ${stable} until promotion`,
    cfg.skipAnalysis
      ? `kube-canary: ${canary} gets the new template; ${ANN_SKIP_ANALYSIS} is set, so it is promoted as soon as ${canary} is ready`
      : `kube-canary: ${canary} gets the new template; ${describeAnalysis(cfg.analysis)}`,
    // describe first: it works everywhere; the plugin only where it is installed.
    `kube-canary: follow it with "kubectl describe deployment ${name} -n ${namespace}" or the plugin's "kubectl canary watch"`,
  ];
}

/**
 * The JSON Patch from the request's object to its mutableCopy: only the parts mutableCopy makes
 * fresh can differ, so only they are compared (a generic diff would walk the whole Deployment).
 */
function patchOf(original: V1Deployment, mutated: V1Deployment): Operation[] {
  const ops: Operation[] = [];
  const annotations = mutated.metadata?.annotations;
  if (original.metadata === undefined) {
    if (annotations && Object.keys(annotations).length > 0) ops.push({ op: 'add', path: '/metadata', value: { annotations } });
  } else ops.push(...mapPatch(['metadata', 'annotations'], original.metadata.annotations, annotations));
  if (mutated.spec!.paused !== original.spec!.paused) ops.push({ op: 'add', path: '/spec/paused', value: mutated.spec!.paused });
  const before = original.spec!.template.metadata;
  const after = mutated.spec!.template.metadata;
  if (before === undefined) {
    if (after !== undefined && Object.keys(after).length > 0) ops.push({ op: 'add', path: '/spec/template/metadata', value: after });
  } else ops.push(...mapPatch(['spec', 'template', 'metadata', 'labels'], before.labels, after?.labels));
  return ops;
}

/**
 * Warnings of at most 256 characters, written so: once all of a response's warnings pass 4 KB the
 * apiserver cuts every one to 256, and an explanation cut there by us ends with "..." at least.
 * (The denial of a new template carries the full text of a configuration problem.)
 */
const MAX_WARNING = 256;
function clipped(warnings: string[]): string[] {
  return warnings.map((w) => cut(w, MAX_WARNING));
}

function patched(uid: string, original: V1Deployment, mutated: V1Deployment, reason: string, warnings: string[]): Decision {
  const patch = patchOf(original, mutated);
  const response: AdmissionResponse = { uid, allowed: true, ...(warnings.length ? { warnings: clipped(warnings) } : {}) };
  if (patch.length > 0) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(patch)).toString('base64');
  }
  return { outcome: patch.length > 0 ? 'patched' : 'allowed', reason, patch, response };
}
