/**
 * The release state machine as one pure function: (observation, now) -> new status + actions.
 * No I/O, no clock, no randomness, so every transition is unit-tested from a table, and a
 * progressor restarted at any instant recomputes the same decision from what is in the API.
 *
 *   Initializing --canary ready--> Progressing --weight steps--> Promoting --stable rolled out--> Finalising --> Succeeded
 *        |  (confirm-rollout)          | (confirm-traffic-increase,      | (deadline)
 *        v                             v  confirm-promotion)             v
 *     Waiting <-----------------------------+                        RollingBack --> Failed
 *   threshold failed checks, a rollback webhook, or a missed progress deadline -> RollingBack
 *
 * Requests (kube-canary.io/request, see requests below): pause (Initializing/Progressing/Waiting
 * -> Paused, held until resume), resume (Paused -> Progressing, or Initializing before the first
 * weight), promote (-> Promoting at once), abort (-> RollingBack), retry (clear failed-revision
 * outside a release). Each decision that reads a request removes it in its own commit.
 *
 * A release is in progress exactly while kube-canary.io/revision is on the stable Deployment.
 * When the gates need I/O (metric checks, webhooks) or rollback needs the stable ReplicaSet,
 * step() returns a Need; the reconciler fetches it and calls step() again with the answer.
 */
import type { Analysis, WebhookType } from '../config/analysis.js';
import { show } from '../config/show.js';
import { ANN_REQUEST, REQUESTS, canaryName } from '../config/contract.js';
import { formatDuration } from '../config/duration.js';
import { type ReleaseConfig, isReleaseRequest } from '../config/release-config.js';
import { canonicalJson } from '../config/template-hash.js';
import { isTerminal, type Phase, type ReleaseStatus, type WaitingOn } from '../config/status.js';
import { canaryReplicas } from './canary.js';
import type { Action, CanaryView, Decision, GateKind, GateOutcome, Observation, RolloutView, StableView, StepResult } from './types.js';

type Ctx = { obs: Observation; now: number; cfg: ReleaseConfig; id: string; canaryId: string };

/**
 * A hold that lasts (a confirm gate, a halted or stuck release, an invalid configuration) is said
 * again this often: the apiserver drops Events after an hour (its default --event-ttl), and
 * `kubectl describe` would then show a paused Deployment with no reason.
 */
export const HOLD_REPEAT_MS = 30 * 60_000;

/** Whether the hold `msg` is to be said (as an Event) now: it is new, or was last said HOLD_REPEAT_MS ago. */
function sayHold(s: ReleaseStatus | undefined, msg: string, now: number, same = s?.message === msg): boolean {
  if (!s || !same) return true;
  return now - Date.parse(s.saidAt ?? s.lastTransitionAt) >= HOLD_REPEAT_MS;
}

/** The status with `msg`, stamped as said now when it was. */
function saying(s: ReleaseStatus, msg: string, said: boolean, now: number): ReleaseStatus {
  return said ? { ...s, message: msg, saidAt: iso(now) } : { ...s, message: msg };
}

/** Gates to run for the release `s` is about: its revision and phase go into the webhooks' payload (checksum, phase). */
const need = (gate: GateKind, s: ReleaseStatus): StepResult => ({ kind: 'need', need: 'gates', gate, revision: s.revision, phase: s.phase });

export function step(obs: Observation, now: number): StepResult {
  const st = obs.stable;
  const prev = st.status;
  const id = `${st.name}.${st.namespace}`;
  const req = st.request;
  if (!st.revision) {
    const d = idle(obs, now, id);
    return finish(obs, prev, req === undefined ? d : withActions(d, idleRequest(obs, req, id)), [], false, now);
  }

  if (st.optedOut) {
    const d = optedOut(obs, now, id);
    return finish(obs, prev, req === undefined ? d : withActions(d, ignore(req, id, `${id} is no longer opted in to kube-canary`)), [], false, now);
  }

  if (!st.config.ok) {
    const d = invalidConfig(obs, now, id, st.config.errors);
    return finish(obs, prev, req === undefined ? d : withActions(d, ignore(req, id, 'the kube-canary configuration is invalid (see the InvalidConfig Event); fix it, then ask again')), [], false, now);
  }
  const ctx: Ctx = { obs, now, cfg: st.config.value, id, canaryId: `${canaryName(st.name)}.${st.namespace}` };

  // The user put back the template the pods are running: nothing to release.
  if (st.stableRevision !== undefined && st.revision === st.stableRevision) {
    const d = cancel(ctx);
    return finish(obs, prev, req === undefined ? d : withActions(d, ignore(req, id, `the release is cancelled: ${id} is back on its running revision ${st.revision}`)), [], false, now);
  }

  let s = prev;
  const pre: Action[] = [];
  const fresh = !s || s.revision !== st.revision || isTerminal(s.phase);
  if (fresh) {
    const restarted = s && !isTerminal(s.phase);
    const old = s;
    s = newStatus(st, now, restarted ? `New revision ${st.revision} detected during the release of ${s!.revision}: analysis restarts` : `New revision ${st.revision} detected`);
    pre.push(event(false, 'NewRevision', restarted ? `New revision detected ${id}: analysis restarts (revision ${old!.revision} superseded by ${st.revision})` : `New revision detected ${id}`));
  }
  let ignored: Action[] = [];
  if (req !== undefined) {
    const a = applyRequest(req, s!, ctx);
    if (typeof a !== 'string') return finish(obs, prev, a, pre, fresh, now);
    ignored = ignore(req, id, a);
  }
  const r = obs.routeHolder && ANALYSING.includes(s!.phase) ? decided(heldByOther(s!, ctx, obs.routeHolder)) : byPhase(s!.heldBy ? unheld(s!, ctx) : s!, ctx);
  if (r.kind === 'need') return r;
  return finish(obs, prev, withActions(r, ignored), pre, fresh, now);
}

/**
 * Another release routes the same Service (shared-service.ts): this one has no canary and sets no
 * routes until that one ends, and says so. One that had got further (both started at once, or
 * before this rule) starts again from Initializing then: its canary is removed now, as the canary
 * subset would otherwise carry it along with the other release's canary. A paused one stays
 * paused. Polled every interval: the other Deployment's events do not wake this one.
 */
function heldByOther(s0: ReleaseStatus, c: Ctx, holder: string): Decision {
  const { routing: _r, ...s } = s0;
  const actions: Action[] = c.obs.canary ? [{ type: 'deleteCanary' }] : [];
  // Paused: stays paused, from its first step again (its canary goes, so its weight cannot stay).
  if (s.phase === 'Paused') return { status: { ...s, weight: 0, stepIndex: -1, heldBy: holder }, actions };
  const further = s.phase !== 'Initializing' || s.stepIndex >= 0 || !!c.obs.canary;
  const msg = `Waiting for the release of ${holder}.${c.obs.stable.namespace} to end: it routes Service ${c.cfg.service ?? c.obs.stable.name} too, and kube-canary shifts one release's traffic at a time; ${c.id} starts ${further ? 'again from its first step ' : ''}then`;
  const { lastCheckAt: _a, canaryUnreadySince: _b, preRolloutDone: _c, ...rest } = withoutWaiting(s);
  const restarted: ReleaseStatus = further ? { ...transition(rest, 'Initializing', c.now, msg), weight: 0, stepIndex: -1 } : s;
  const say = sayHold(s0, msg, c.now);
  if (say) actions.push(event(false, 'Waiting', msg));
  return { status: { ...saying(restarted, msg, say, c.now), heldBy: holder }, actions, requeueAfterMs: c.cfg.analysis.intervalMs };
}

/** The wait for another release is over: the phase's clocks (progress deadline, next check) start now. */
function unheld(s: ReleaseStatus, c: Ctx): ReleaseStatus {
  const { heldBy: _, ...rest } = s;
  return { ...rest, lastTransitionAt: iso(c.now), ...(rest.lastCheckAt ? { lastCheckAt: iso(c.now) } : {}) };
}

function byPhase(s: ReleaseStatus, c: Ctx): StepResult {
  switch (s.phase) {
    case 'Initializing':
      return initializing(s, c);
    case 'Waiting':
      return waiting(s, c);
    case 'Promoting':
      return promoting(s, c);
    case 'Finalising':
      return finalising(s, c);
    case 'RollingBack':
      return rollingBack(s, c);
    case 'Paused':
      return paused(s, c);
    case 'Progressing':
    default:
      return progressing({ ...s, phase: 'Progressing' }, c);
  }
}

// ---- phases -------------------------------------------------------------------------------

function initializing(s: ReleaseStatus, c: Ctx): StepResult {
  const a = c.cfg.analysis;
  if (awaitingRollout(s, c)) {
    const g = c.obs.gates?.['confirm-rollout'];
    if (!g) return need('confirm-rollout', s);
    if (!g.passed) return decided(wait(s, c, 'confirm-rollout', g, noCanary(c)));
    s = { ...s, rolloutConfirmed: true };
  }
  const actions = canaryActions(s, c);
  if (!canaryReady(c.obs.canary, s.revision)) {
    const left = deadlineLeft(s, c);
    if (left <= 0) return decided(rollback(s, c, `${c.canaryId} was not ready within the progress deadline ${formatDuration(c.cfg.progressDeadlineMs)}`));
    const replicas = canaryReplicas(c.obs.stable.replicas, a.maxWeight);
    const msg = `Waiting for ${c.canaryId} rollout to finish: ${c.obs.canary ? rolloutPending(c.obs.canary, s.revision) : `0 of ${replicas} new replicas have been updated`}`;
    const say = sayHold(s, msg, c.now, sameRolloutWait(s.message, msg));
    if (say) actions.push(event(false, 'Waiting', msg));
    return decided({ status: saying(s, msg, say, c.now), actions, requeueAfterMs: left });
  }
  if (c.cfg.skipAnalysis) return decided(promote(s, c, actions, true));
  if (hasHooks(a, 'pre-rollout') && !s.preRolloutDone) {
    const left = dueIn(s, c);
    if (left > 0) return decided({ status: s, actions, requeueAfterMs: left });
    const g = c.obs.gates?.['pre-rollout'];
    if (!g) return need('pre-rollout', s);
    if (!g.passed) return decided(failedCheck(s, c, g, actions));
    s = { ...s, preRolloutDone: true };
  }
  // Enter Progressing with the first step due now: the canary has no traffic yet, so there is
  // nothing to measure before the first weight; each later step is gated by an interval of data.
  // (progressing() recomputes the canary actions itself.)
  const p: ReleaseStatus = { ...transition(s, 'Progressing', c.now, `Canary ${c.canaryId} is ready`) };
  delete p.lastCheckAt;
  return progressing(p, c);
}

function progressing(s: ReleaseStatus, c: Ctx): StepResult {
  const a = c.cfg.analysis;
  const actions = canaryActions(s, c);
  const skipped = skipWhenReady(s, c, actions);
  if (skipped) return skipped;
  const left = dueIn(s, c);
  if (left > 0) return decided({ status: s, actions, requeueAfterMs: left });

  if (s.stepIndex >= 0) {
    const ready = haltWhileUnready(s, c, actions);
    if ('kind' in ready) return ready;
    s = ready;
    const verdict = analyse(s, c, actions);
    if (verdict) return verdict;
  }
  s = { ...s, lastCheckAt: iso(c.now) };
  const last = nextStep(s, a.steps) < 0;
  const kind: WaitingOn = last ? 'confirm-promotion' : 'confirm-traffic-increase';
  if (hasHooks(a, kind)) {
    const g = c.obs.gates?.[kind];
    if (!g) return need(kind, s);
    if (!g.passed) return decided(wait(s, c, kind, g, actions));
  }
  return decided(last ? promote(s, c, actions) : advance(s, c, actions));
}

/**
 * As in Flagger: an unready canary halts the analysis (a node blip is not a failed check), and
 * rolls back only if it stays unready past the progress deadline. The halt, or the status to go
 * on with (the unready mark cleared).
 */
function haltWhileUnready(s: ReleaseStatus, c: Ctx, actions: Action[]): StepResult | ReleaseStatus {
  if (canaryReady(c.obs.canary, s.revision)) {
    if (!s.canaryUnreadySince) return s;
    const { canaryUnreadySince: _, ...rest } = s;
    return rest;
  }
  const since = s.canaryUnreadySince ?? iso(c.now);
  const left = Date.parse(since) + c.cfg.progressDeadlineMs - c.now;
  if (left <= 0) return decided(rollback(s, c, `${c.canaryId} has not been ready for the progress deadline ${formatDuration(c.cfg.progressDeadlineMs)}`, actions));
  const msg = `Halt ${c.id} advancement: waiting for ${c.canaryId} to be ready (${c.obs.canary ? rolloutPending(c.obs.canary, s.revision) : 'it does not exist'})`;
  const say = sayHold(s, msg, c.now);
  return decided({ status: saying({ ...s, canaryUnreadySince: since }, msg, say, c.now), actions: say ? [...actions, event(true, 'Halt', msg)] : actions, requeueAfterMs: left });
}

function waiting(s: ReleaseStatus, c: Ctx): StepResult {
  const on = s.waitingOn;
  if (on === 'confirm-rollout' || (on === undefined && s.stepIndex < 0)) return confirmingRollout(s, c);
  const actions = canaryActions(s, c);
  const skipped = skipWhenReady(s, c, actions);
  if (skipped) return skipped;
  const left = dueIn(s, c);
  if (left > 0) return decided({ status: s, actions, requeueAfterMs: left });
  const kind: WaitingOn = on ?? 'confirm-traffic-increase';
  // The canary keeps its traffic while a confirm gate holds: it is still judged every interval
  // (metrics, rollout and rollback webhooks), as in Flagger, and rolled back on its threshold;
  // not while it is unready (no data then is no failed check), as in Progressing.
  const halted = s.canaryUnreadySince !== undefined;
  const ready = haltWhileUnready(s, c, actions);
  if ('kind' in ready) return ready;
  s = ready;
  const verdict = analyse(s, c, actions);
  if (verdict) return verdict;
  const g = c.obs.gates?.[kind];
  if (!g) return need(kind, s);
  // After a Halt the last Event says halted: say the wait again.
  if (!g.passed) return decided(wait(s, c, kind, g, actions, halted));
  const resumed = withoutWaiting({ ...transition(s, 'Progressing', c.now, s.message), lastCheckAt: iso(c.now) });
  return decided(kind === 'confirm-promotion' ? promote(resumed, c, actions) : advance(resumed, c, actions));
}

/**
 * Waiting on confirm-rollout: no canary, the gate asked every interval, and the wait said once
 * (Waiting stays the phase: going through Initializing would say it anew each time).
 */
function confirmingRollout(s: ReleaseStatus, c: Ctx): StepResult {
  if (awaitingRollout(s, c)) {
    const left = dueIn(s, c);
    if (left > 0) return decided({ status: s, actions: noCanary(c), requeueAfterMs: left });
    const g = c.obs.gates?.['confirm-rollout'];
    if (!g) return need('confirm-rollout', s);
    if (!g.passed) return decided(wait(s, c, 'confirm-rollout', g, noCanary(c)));
    s = { ...s, rolloutConfirmed: true };
  }
  // Approved, or the gate no longer applies (skip-analysis set, the hook removed). The progress
  // deadline bounds the canary's rollout, so it counts from now, not from the start of the wait.
  const { lastCheckAt: _, ...next } = withoutWaiting(transition(s, 'Initializing', c.now, s.message));
  return initializing(next, c);
}

function promoting(s: ReleaseStatus, c: Ctx): StepResult {
  const st = c.obs.stable;
  const actions: Action[] = [];
  // The canary's share would go to pods that no longer exist; the stable Deployment is rolling
  // onto the same revision, so it takes all the traffic now instead of at the end.
  if (!c.obs.canary && s.weight > 0) {
    const msg = `${c.canaryId} was deleted during the promotion of revision ${s.revision}; all traffic goes to ${c.id}, which is rolling out that revision`;
    actions.push(event(true, 'CanaryDeleted', msg));
    s = { ...s, weight: 0 };
  }
  // The unpause was written together with the Promoting status; repeat it if something re-paused.
  if (st.paused) actions.push({ type: 'unpauseStable' });
  if (!st.paused && stableRolledOut(st, s.revision)) {
    // Route everything back to the (now new) stable pods before the canary goes away (Flagger's "Routing all traffic to primary").
    const msg = `Routing all traffic to ${c.id}`;
    return decided({ status: { ...transition(s, 'Finalising', c.now, msg), weight: 0 }, actions: [...actions, event(false, 'Finalising', msg)], requeueAfterMs: 0 });
  }
  const left = deadlineLeft(s, c);
  if (left <= 0) return decided(rollback(s, c, `${c.id} rollout of revision ${s.revision} did not finish within the progress deadline ${formatDuration(c.cfg.progressDeadlineMs)}`, actions));
  const msg = `Waiting for ${c.id} rollout to finish: ${rolloutPending(st, s.revision) ?? 'unpausing it'}`;
  const say = sayHold(s, msg, c.now, sameRolloutWait(s.message, msg));
  if (say) actions.push(event(false, 'Waiting', msg));
  return decided({ status: saying(s, msg, say, c.now), actions, requeueAfterMs: left });
}

function finalising(s: ReleaseStatus, c: Ctx): StepResult {
  // Delete the canary before clearing the release annotations: once they are gone nobody
  // would come back for an orphaned canary (the idle cleanup would, but only on a later event).
  const msg = `Promotion completed! Scaling down ${c.canaryId}`;
  return decided({
    status: { ...transition(s, 'Succeeded', c.now, msg), weight: 0 },
    actions: [{ type: 'deleteCanary' }, { type: 'clearRelease' }, event(false, 'Promoted', msg), { type: 'notify', hook: 'post-rollout', phase: 'Succeeded' }],
  });
}

function rollingBack(s: ReleaseStatus, c: Ctx): StepResult {
  const stableRev = c.obs.stable.stableRevision;
  if (stableRev === undefined) return decided(stuckRollback(s, c, 'kube-canary.io/stable-revision is missing, so the template to restore is unknown'));
  if (c.obs.stableTemplateFound === undefined) return { kind: 'need', need: 'stableTemplate', revision: stableRev };
  if (!c.obs.stableTemplateFound) return decided(stuckRollback(s, c, `no ReplicaSet of ${c.id} runs the stable revision ${stableRev}`));
  const reason = s.message;
  return decided({
    status: { ...transition(s, 'Failed', c.now, reason), weight: 0, failure: { revision: s.revision, at: iso(c.now), message: reason } },
    actions: [
      { type: 'deleteCanary' },
      { type: 'restoreStableTemplate', revision: stableRev },
      { type: 'unpauseStable' },
      { type: 'clearRelease', failedRevision: s.revision },
      // The article's wording when there is a canary of ours to scale down; none was made when the
      // release was held (a missing Service, a Deployment of that name that is not ours).
      event(true, 'RolledBack', c.obs.canary ? `Canary failed! Scaling down ${c.canaryId}` : `Canary failed! ${c.id} stays on revision ${stableRev}; no canary of it was running`),
      { type: 'notify', hook: 'post-rollout', phase: 'Failed' },
    ],
  });
}

function paused(s: ReleaseStatus, c: Ctx): StepResult {
  // Held until a request: no gates, no deadline, no timer (the request's watch event wakes us).
  // Routes are still kept at the status weight by finish(), so the canary they send traffic to is
  // kept too: one deleted meanwhile is recreated (with its Warning), as in any other phase.
  // Paused before confirm-rollout approved: there is no canary yet, and none is made.
  return decided({ status: s, actions: awaitingRollout(s, c) ? [] : canaryActions(s, c) });
}

// ---- requests (kube-canary.io/request) -------------------------------------------------------

/** Phases in which the analysis runs (or is held): where promote, abort and pause apply. */
const ANALYSING: readonly Phase[] = ['Initializing', 'Progressing', 'Waiting', 'Paused'];

/**
 * A request during a release: the decision that carries it out (removing the request in the
 * same commit), or why it does not apply (the caller then ignores it, with a Warning).
 */
function applyRequest(req: string, s: ReleaseStatus, c: Ctx): Decision | string {
  const done = (d: Decision): Decision => ({ ...d, actions: [{ type: 'clearRequest', request: req }, ...d.actions] });
  const { name, namespace } = c.obs.stable;
  switch (req) {
    case 'pause': {
      if (s.phase === 'Paused') return `the release of ${c.id} is already paused`;
      if (!ANALYSING.includes(s.phase)) return notNow(s, c);
      const what = `Release of ${c.id} paused by request at canary weight ${s.weight}`;
      const msg = `${what}; resume it with "kubectl canary resume ${name} -n ${namespace}" (or: kubectl annotate deployment ${name} -n ${namespace} ${ANN_REQUEST}=resume)`;
      const { canaryUnreadySince: _, ...held } = withoutWaiting(transition(s, 'Paused', c.now, msg));
      return done({ status: held, actions: [event(false, 'Paused', what)] });
    }
    case 'resume': {
      if (s.phase !== 'Paused') return `the release of ${c.id} is not paused (phase ${s.phase})`;
      if (s.stepIndex < 0) {
        // Paused before the first weight: Initializing again (confirm-rollout, canary readiness
        // and pre-rollout are not skipped), its progress deadline counted from now.
        const msg = `Release of ${c.id} resumed by request before the first weight`;
        return done({ status: transition(s, 'Initializing', c.now, msg), actions: [event(false, 'Resumed', msg)], requeueAfterMs: 0 });
      }
      const msg = `Release of ${c.id} resumed by request at canary weight ${s.weight}: next check in ${formatDuration(c.cfg.analysis.intervalMs)}`;
      return done({ status: { ...transition(s, 'Progressing', c.now, msg), lastCheckAt: iso(c.now) }, actions: [event(false, 'Resumed', msg)], requeueAfterMs: c.cfg.analysis.intervalMs });
    }
    case 'promote': {
      if (!ANALYSING.includes(s.phase)) return notNow(s, c);
      const { canaryUnreadySince: _, ...rest } = s;
      return done(promote(rest, c, [event(false, 'PromotionRequested', `Promotion of ${c.id} requested: skipping the remaining analysis`)]));
    }
    case 'abort': {
      if (!ANALYSING.includes(s.phase) && s.phase !== 'Promoting') return notNow(s, c);
      return done(rollback(s, c, 'aborted by request', [], event(true, 'Aborted', `Release of ${c.id} aborted by request at canary weight ${s.weight}: rolling back`)));
    }
    case 'retry':
      return `the release of revision ${s.revision} is in progress; retry applies to a failed revision once no release is in progress`;
    default:
      return notARequest(req);
  }
}

function notNow(s: ReleaseStatus, c: Ctx): string {
  switch (s.phase) {
    case 'Promoting':
      return `revision ${s.revision} is already being promoted into ${c.id} (abort still rolls it back)`;
    case 'Finalising':
      return `the promotion of revision ${s.revision} into ${c.id} is completing`;
    case 'RollingBack':
      return `${c.id} is already rolling back`;
    default:
      return `the release of ${c.id} is ${s.phase}`;
  }
}

function notARequest(req: string): string {
  return `${show(req)} is not a request; allowed: ${REQUESTS.join(', ')}`;
}

/** A request with no release in progress: only retry applies (and only after a rollback). */
function idleRequest(obs: Observation, req: string, id: string): Action[] {
  const failed = obs.stable.failedRevision;
  if (req === 'retry') {
    if (!failed) return ignore(req, id, `no failed revision of ${id} is recorded, so there is nothing to retry`);
    return [{ type: 'clearRequest', request: req }, { type: 'clearFailedRevision' }, event(false, 'Retry', `Revision ${failed} of ${id} may be shipped again`)];
  }
  if (isReleaseRequest(req)) return ignore(req, id, `no release of ${id} is in progress`);
  return ignore(req, id, notARequest(req));
}

/** Remove a request that does not apply, and say why (never leave it lying around). */
function ignore(req: string, id: string, why: string): Action[] {
  return [{ type: 'clearRequest', request: req, ignored: why }, event(true, 'RequestIgnored', `Request ${show(req)} on ${id} ignored: ${why}`)];
}

function withActions<T extends Decision>(d: T, extra: Action[]): T {
  return extra.length === 0 ? d : { ...d, actions: [...d.actions, ...extra] };
}

// ---- outside a release ----------------------------------------------------------------------

function idle(obs: Observation, now: number, id: string): Decision {
  const prev = obs.stable.status;
  const actions: Action[] = [];
  if (prev && !isTerminal(prev.phase)) {
    // Only an outside hand removes kube-canary.io/revision mid-release (we clear it together
    // with the terminal status). Route to stable and drop the canary; leave pause to the user.
    const msg = `kube-canary.io/revision was removed from ${id} during the release of ${prev.revision}; release abandoned, all traffic on stable`;
    return {
      status: { ...transition(prev, 'Failed', now, msg), weight: 0 },
      actions: [{ type: 'deleteCanary' }, event(true, 'Abandoned', msg)],
    };
  }
  if (obs.canary) actions.push({ type: 'deleteCanary' }, event(false, 'Cleanup', `Deleted leftover ${canaryName(obs.stable.name)}.${obs.stable.namespace}: no release is in progress`));
  return { status: prev, actions };
}

function cancel(c: Ctx): Decision {
  const st = c.obs.stable;
  const prev = st.status;
  const msg = prev && !isTerminal(prev.phase)
    ? `Release of revision ${prev.revision} cancelled: ${c.id} is back on its running revision ${st.revision}`
    : `Release cancelled: ${c.id} template equals its running revision ${st.revision}`;
  const base = prev ?? newStatus(st, c.now, msg);
  const actions: Action[] = [{ type: 'deleteCanary' }];
  if (st.paused) actions.push({ type: 'unpauseStable' });
  actions.push({ type: 'clearRelease' }, event(false, 'Cancelled', msg));
  return {
    status: withoutWaiting({ ...transition(base, 'Succeeded', c.now, msg), revision: st.revision!, weight: 0, cancelled: true }),
    actions,
  };
}

/**
 * Opted out mid-release (nobody can deny a Namespace label change): routes back to stable
 * (finish() does that first), the canary goes, and the Deployment is unpaused to roll out the
 * template the user wrote, as plain Kubernetes would. Never left paused with nobody to finish it.
 */
function optedOut(obs: Observation, now: number, id: string): Decision {
  const st = obs.stable;
  const msg = `Release of revision ${st.revision} cancelled: ${id} is no longer opted in (the kube-canary.io/enabled label left it or its Namespace); it rolls out its current template as a plain Deployment`;
  const base = st.status ?? newStatus(st, now, msg);
  const actions: Action[] = [{ type: 'deleteCanary' }];
  if (st.paused) actions.push({ type: 'unpauseStable' });
  actions.push({ type: 'clearRelease' }, event(true, 'OptedOut', msg));
  return {
    status: withoutWaiting({ ...transition(base, 'Succeeded', now, msg), revision: st.revision!, weight: 0, cancelled: true }),
    actions,
  };
}

function invalidConfig(obs: Observation, now: number, id: string, errors: string[]): Decision {
  // Hold: never roll out a template without the analysis the user asked for. The webhook
  // denies bad annotations, so this is a cluster default or an old object that no longer parses.
  const st = obs.stable;
  const msg = `Invalid kube-canary configuration on ${id}, release on hold: ${errors.join('; ')}`;
  const base = st.status && st.status.revision === st.revision && !isTerminal(st.status.phase) ? st.status : newStatus(st, now, msg);
  const say = sayHold(st.status, msg, now);
  return { status: saying(base, msg, say, now), actions: say ? [event(true, 'InvalidConfig', msg)] : [] };
}

// ---- transitions --------------------------------------------------------------------------

/**
 * The index of the next step: the first weight of the plan above the current one. Found from the
 * weight rather than from the stored step index, so a plan edited mid-release (the analysis
 * annotation changed) carries on from where the traffic is, and -1 when nothing is left.
 */
function nextStep(s: ReleaseStatus, steps: number[]): number {
  const current = s.stepIndex >= 0 ? s.weight : 0;
  return steps.findIndex((w) => w > current);
}

/** kube-canary.io/skip-analysis set mid-release: promote as soon as the canary is ready, as when it is set from the start. */
function skipWhenReady(s: ReleaseStatus, c: Ctx, actions: Action[]): StepResult | undefined {
  if (!c.cfg.skipAnalysis || !canaryReady(c.obs.canary, s.revision)) return undefined;
  return decided(promote(withoutWaiting(s), c, actions, true));
}

function advance(s: ReleaseStatus, c: Ctx, actions: Action[]): Decision {
  const i = nextStep(s, c.cfg.analysis.steps);
  if (i < 0) return promote(s, c, actions); // the plan was shortened below the current weight while waiting
  const weight = c.cfg.analysis.steps[i]!;
  const msg = `Advance ${c.id} canary weight ${weight}`;
  return {
    status: withoutWaiting({ ...transition(s, 'Progressing', c.now, msg), stepIndex: i, weight, lastCheckAt: iso(c.now) }),
    actions: [...actions, event(false, 'Advance', msg)],
    requeueAfterMs: c.cfg.analysis.intervalMs,
  };
}

function promote(s: ReleaseStatus, c: Ctx, actions: Action[], analysisSkipped = false): Decision {
  // Strategy Recreate takes every stable pod down before it starts the new ones: the canary, which
  // runs the revision being promoted, carries all the traffic until they are up (Finalising).
  const recreate = c.obs.stable.recreate === true && canaryReady(c.obs.canary, s.revision);
  const msg = `Promoting revision ${s.revision} into ${c.id}${recreate ? `: all traffic on ${c.canaryId} while ${c.id} is recreated (strategy Recreate)` : ''}`;
  return {
    status: withoutWaiting({ ...transition(s, 'Promoting', c.now, msg), ...(recreate ? { weight: 100 } : {}) }),
    actions: [...actions, { type: 'unpauseStable' }, event(false, 'Promoting', analysisSkipped ? `${msg} (analysis skipped)` : msg)],
    requeueAfterMs: c.cfg.progressDeadlineMs,
  };
}

function rollback(s: ReleaseStatus, c: Ctx, reason: string, actions: Action[] = [], ev: Action = event(true, 'RollingBack', `Rolling back ${c.id}: ${reason}`)): Decision {
  const msg = `Rolling back ${c.id}: ${reason}`;
  return {
    status: withoutWaiting({ ...transition(s, 'RollingBack', c.now, msg), weight: 0 }),
    actions: [...actions, ev],
    requeueAfterMs: 0,
  };
}

/**
 * One interval's analysis of a canary that has traffic: metric checks and the rollout and
 * rollback webhooks. Undefined when it passed (or there is nothing to run); otherwise what to do.
 */
function analyse(s: ReleaseStatus, c: Ctx, actions: Action[]): StepResult | undefined {
  const a = c.cfg.analysis;
  if (!hasAnalysis(a)) return undefined;
  const g = c.obs.gates?.analysis;
  if (!g) return need('analysis', s);
  if (g.rollbackRequested) {
    const who = g.results.filter((r) => r.passed && a.webhooks.some((w) => w.type === 'rollback' && w.name === r.name)).map((r) => r.name);
    return decided(rollback(s, c, `rollback webhook ${who.join(', ') || '(unnamed)'} asked for a rollback`, actions));
  }
  if (!g.passed) return decided(failedCheck(s, c, g, actions));
  return undefined;
}

function failedCheck(s: ReleaseStatus, c: Ctx, g: GateOutcome, actions: Action[]): Decision {
  const failedChecks = s.failedChecks + 1;
  const why = g.results.filter((r) => !r.passed).map((r) => r.message).join('; ') || 'a gate failed';
  const t = c.cfg.analysis.threshold;
  if (failedChecks >= t) return rollback({ ...s, failedChecks }, c, `failed checks threshold reached ${failedChecks} (${why})`, actions);
  const msg = `Halt ${c.id} advancement (${failedChecks} of ${t} failed checks): ${why}`;
  return {
    status: { ...s, failedChecks, lastCheckAt: iso(c.now), message: msg },
    actions: [...actions, event(true, 'Halt', msg)],
    requeueAfterMs: c.cfg.analysis.intervalMs,
  };
}

function wait(s: ReleaseStatus, c: Ctx, on: WaitingOn, g: GateOutcome, actions: Action[] = [], resumed = false): Decision {
  const why = g.results.filter((r) => !r.passed).map((r) => r.message).join('; ');
  const msg = `Waiting for ${on} approval of ${c.id}${why ? `: ${why}` : ''}`;
  // Said when the wait starts (its reason may change with every call of the gate), and again while it lasts.
  const say = sayHold(s, msg, c.now, !resumed && s.phase === 'Waiting' && s.waitingOn === on);
  const ev = say ? [event(false, 'Waiting', msg)] : [];
  return {
    status: { ...saying(transition(s, 'Waiting', c.now, msg), msg, say, c.now), waitingOn: on, lastCheckAt: iso(c.now) },
    actions: [...actions, ...ev],
    requeueAfterMs: c.cfg.analysis.intervalMs,
  };
}

function stuckRollback(s: ReleaseStatus, c: Ctx, problem: string): Decision {
  // Unpausing now would roll out the failed template, so stay paused at weight 0 and say why.
  // The reason before " | " is kept (and not repeated) however often this is retried.
  // The way out: the user puts the stable template back (the previous manifest), which cancels the release.
  const msg = `${s.message.split(' | ')[0]} | cannot restore the stable template: ${problem}; ${c.id} stays paused with all traffic on stable until its template is set back to that revision (apply the previous manifest)`;
  const say = sayHold(s, msg, c.now);
  return { status: saying(s, msg, say, c.now), actions: say ? [event(true, 'RollbackStuck', msg)] : [], requeueAfterMs: c.cfg.analysis.intervalMs };
}

/**
 * Common tail: align the routes with the status weight (first, so traffic leaves the canary
 * before it changes or goes), then the phase's actions, then the status write.
 */
function finish(obs: Observation, prev: ReleaseStatus | undefined, d: Decision | StepResult, pre: Action[], newRelease: boolean, now: number): StepResult {
  if ('kind' in d && d.kind === 'need') return d;
  const dec = d as Decision;
  let s = dec.status;
  // With an invalid configuration the provider itself is unknown: touch no routes.
  const inProgress = !!obs.stable.revision && !!s && !isTerminal(s.phase) && obs.stable.config.ok;
  // Routing its Service from now on (the first decision with no other release in the way, or its
  // Service changed): stamped, as its rank among releases behind that Service (shared-service.ts),
  // and the routes ensured, so that routes generated for another Deployment there are owned by
  // this one too and outlive that one's deletion.
  const service = obs.stable.config.ok ? (obs.stable.config.value.service ?? obs.stable.name) : undefined;
  const startsRouting = inProgress && !obs.routeHolder && s!.phase !== 'RollingBack' && s!.routing?.service !== service;
  if (startsRouting) s = { ...s!, routing: { service: service!, since: iso(now) } };
  const desired = s && inProgress ? s.weight : 0;
  // Rolling back with no routes at all (never made, for a release held by a missing Service; or
  // deleted): nothing routes the host to the canary, so there is nothing to set back. Making them
  // first would need that Service, and hold the rollback, and an abort, until it exists.
  // Also while another release routes the Service (routeHolder): its routes are not ours to set.
  const unrouted = (s?.phase === 'RollingBack' && obs.routes === undefined) || obs.routeHolder !== undefined;
  const routes: Action[] = [];
  if (inProgress && !unrouted && (newRelease || obs.routes === undefined || startsRouting)) routes.push({ type: 'ensureRoutes' });
  const r = obs.routes;
  if (obs.stable.config.ok && !unrouted && (r ? r.canary !== desired || r.stable !== 100 - desired : inProgress)) routes.push({ type: 'setWeight', canary: desired });
  const actions = [...routes, ...routesRepaired(obs, prev, desired, inProgress && !newRelease && !unrouted && !prev?.heldBy), ...(unrouted ? [] : idleRoutesReset(obs, s, routes)), ...pre, ...dec.actions];
  if (s && !sameStatus(s, prev)) actions.push({ type: 'writeStatus', status: s });
  return { kind: 'decision', status: s, actions, ...(dec.requeueAfterMs !== undefined ? { requeueAfterMs: Math.max(0, dec.requeueAfterMs) } : {}) };
}

// ---- helpers ------------------------------------------------------------------------------

/**
 * A Warning when the routes of a release in progress are not what its committed status says and
 * not what this decision sets: somebody deleted or edited them (a GitOps tool syncing its own
 * weights back shows up here, release after release), or a restart interrupted a step.
 */
/** (Not for a release taking over routes another release left behind: `ongoing` is false then.) */
function routesRepaired(obs: Observation, prev: ReleaseStatus | undefined, desired: number, ongoing: boolean): Action[] {
  if (!ongoing || !prev || isTerminal(prev.phase)) return [];
  const id = `${obs.stable.name}.${obs.stable.namespace}`;
  const r = obs.routes;
  if (!r) return [event(true, 'RoutesRecreated', `The traffic routes of ${id} were missing (deleted?); recreated with ${desired}% on the canary`)];
  const is = (w: number) => r.canary === w && r.stable === 100 - w;
  if (is(prev.weight) || is(desired)) return [];
  if (r.canary < 0) return [event(true, 'RoutesRestored', `The traffic routes of ${id} disagreed with each other (several objects route it); all set to ${desired}% on the canary`)];
  return [event(true, 'RoutesRestored', `The traffic routes of ${id} sent ${r.canary}% to the canary and ${r.stable}% to stable instead of ${prev.weight}%; set to ${desired}% (changed outside kube-canary, or a step of ours cut short by a restart or by a write to the Deployment at the same moment)`)];
}

/**
 * A Warning when routes send traffic to the canary while no release is in progress and none just
 * ended: the Deployment was deleted mid-release and created again while no progressor ran, or the
 * weights were set by hand or by a GitOps sync. There are no canary pods then; that share failed.
 */
function idleRoutesReset(obs: Observation, s: ReleaseStatus | undefined, routes: Action[]): Action[] {
  if (obs.stable.revision || (s && !isTerminal(s.phase)) || !routes.some((a) => a.type === 'setWeight')) return [];
  if (s && s.phase !== obs.stable.status?.phase) return []; // this very decision ends a release: its own Event says so
  const r = obs.routes!;
  const id = `${obs.stable.name}.${obs.stable.namespace}`;
  const was = r.canary < 0 ? 'a share that several routing objects disagree on' : `${r.canary}%`;
  return [event(true, 'RoutesRestored', `The traffic routes of ${id} sent ${was} to the canary with no release in progress (a release interrupted by the Deployment's deletion, or weights set outside kube-canary); all traffic set to stable`)];
}

function decided(d: Decision): StepResult {
  return { kind: 'decision', ...d };
}

function newStatus(st: StableView, now: number, message: string): ReleaseStatus {
  // The record of the failure that kube-canary.io/failed-revision still names outlives this release (see FailureRecord).
  const failure = st.status?.failure;
  // A new revision mid-release keeps the Service it routes (shared-service.ts).
  const routing = st.status && !isTerminal(st.status.phase) ? st.status.routing : undefined;
  return {
    ...(failure && failure.revision === st.failedRevision ? { failure } : {}),
    ...(routing ? { routing } : {}),
    phase: 'Initializing',
    revision: st.revision ?? st.templateHash,
    stableRevision: st.stableRevision ?? '',
    weight: 0,
    stepIndex: -1,
    failedChecks: 0,
    startedAt: iso(now),
    lastTransitionAt: iso(now),
    message,
  };
}

function transition(s: ReleaseStatus, phase: Phase, now: number, message: string): ReleaseStatus {
  return { ...s, phase, message, lastTransitionAt: phase === s.phase ? s.lastTransitionAt : iso(now) };
}

function withoutWaiting(s: ReleaseStatus): ReleaseStatus {
  const { waitingOn: _, ...rest } = s;
  return rest;
}

/** Canary create/update when it is missing or differs from what this revision needs. */
function canaryActions(s: ReleaseStatus, c: Ctx): Action[] {
  // A plan cut below the current weight mid-release: the canary still carries that weight until the next step.
  const replicas = canaryReplicas(c.obs.stable.replicas, Math.max(c.cfg.analysis.maxWeight, s.weight));
  const cur = c.obs.canary;
  if (cur && cur.templateHash === s.revision && cur.replicas === replicas) return [];
  // The stable Deployment holds the captured template only while it is that revision.
  if (c.obs.stable.templateHash !== s.revision) return [];
  // Progressing (or past the first weight) means the canary was seen ready: gone now, somebody
  // deleted it. The Warning goes out only if the create then happens (not for a canary our cache
  // has not seen yet, nor for one still being deleted): see Reconciler.ensureCanary.
  const recreated = !cur && (s.phase === 'Progressing' || s.stepIndex >= 0) ? `${c.canaryId} was deleted during the release of revision ${s.revision}; recreated it (the analysis halts until it is ready again)` : undefined;
  return [{ type: 'ensureCanary', revision: s.revision, replicas, ...(recreated ? { recreated } : {}) }];
}

/**
 * Why a Deployment is not yet fully rolled out on `revision`, in `kubectl rollout status`'s
 * terms, or undefined when it is: every replica updated and available, no old pod left.
 * `availableReplicas` counts pods of every template, so it says something about the new ones
 * only once no old pod is left: checked in that order.
 */
const PODS_REFUSED = 'its pods cannot be created';

/**
 * Whether two rollout waits are one hold for the Events: the progress counts in the message move
 * with every pod (and the controller's lag shows between writes), which is no news; pods being
 * refused is.
 */
function sameRolloutWait(said: string | undefined, msg: string): boolean {
  const head = msg.slice(0, msg.indexOf(' rollout to finish: '));
  return said !== undefined && said.startsWith(`${head} rollout to finish: `) && said.includes(PODS_REFUSED) === msg.includes(PODS_REFUSED);
}

export function rolloutPending(d: RolloutView, revision: string): string | undefined {
  if (d.templateHash !== revision) return `it is not on revision ${revision} yet`;
  if (d.observedGeneration < d.generation) return 'waiting for the Deployment controller to see the new spec';
  // The condition's message names a generated pod and changes with every retry: the reason and
  // where to read the message keep the status (and the Waiting Event, said once per reason) steady.
  const failing = d.replicaFailure ? `; ${PODS_REFUSED} (condition ReplicaFailure, ${d.replicaFailure}: kubectl describe deployment shows why, e.g. a ResourceQuota)` : '';
  if (d.updatedReplicas < d.replicas) return `${d.updatedReplicas} of ${d.replicas} new replicas have been updated${failing}`;
  if (d.statusReplicas > d.updatedReplicas) return `${d.statusReplicas - d.updatedReplicas} old replicas are pending termination`;
  if (d.availableReplicas < d.updatedReplicas) return `${d.availableReplicas} of ${d.updatedReplicas} updated replicas are available`;
  return undefined;
}

export function canaryReady(c: CanaryView | undefined, revision: string): boolean {
  return !!c && rolloutPending(c, revision) === undefined;
}

/** Fully rolled out on the new template: every replica updated and available, no old pod left. */
export function stableRolledOut(st: StableView, revision: string): boolean {
  return rolloutPending(st, revision) === undefined;
}

/**
 * confirm-rollout has not approved this release: as in Flagger, the canary is not scaled up until
 * it does, so none runs meanwhile (its pods would take traffic through the Service's selector).
 */
function awaitingRollout(s: ReleaseStatus, c: Ctx): boolean {
  return !c.cfg.skipAnalysis && s.stepIndex < 0 && !s.rolloutConfirmed && hasHooks(c.cfg.analysis, 'confirm-rollout');
}

/** Routes are set to 0 first (finish()), so a canary left over (a superseded revision's) has no traffic when it goes. */
function noCanary(c: Ctx): Action[] {
  return c.obs.canary ? [{ type: 'deleteCanary' }] : [];
}

function hasHooks(a: Analysis, type: WebhookType): boolean {
  return a.webhooks.some((w) => w.type === type);
}

function hasAnalysis(a: Analysis): boolean {
  return a.metrics.length > 0 || hasHooks(a, 'rollout') || hasHooks(a, 'rollback');
}

/** ms until the next gate run is due (<= 0: due now). */
function dueIn(s: ReleaseStatus, c: Ctx): number {
  if (!s.lastCheckAt) return 0;
  return Date.parse(s.lastCheckAt) + c.cfg.analysis.intervalMs - c.now;
}

function deadlineLeft(s: ReleaseStatus, c: Ctx): number {
  const since = Date.parse(s.lastTransitionAt);
  return (Number.isFinite(since) ? since : c.now) + c.cfg.progressDeadlineMs - c.now;
}

function event(warning: boolean, reason: string, message: string): Action {
  return { type: 'emitEvent', warning, reason, message };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function sameStatus(a: ReleaseStatus, b: ReleaseStatus | undefined): boolean {
  return b !== undefined && canonicalJson(a) === canonicalJson(b);
}
