import assert from 'node:assert/strict';
import { canaryReplicas } from '../../src/progressor/canary.js';
import { HOLD_REPEAT_MS, step } from '../../src/progressor/step.js';
import type { Action } from '../../src/progressor/types.js';
import { SEC, T0, config, failing, iso, obs, pass, readyCanary, status } from './fixtures.js';
import { type Decided, type StepRow, decided, eventActions, runRow, written } from './step-table.js';

const events = (a: Action[]) => eventActions(a).map((e) => e.message);

const withHooks = (hooks: Array<{ name: string; type: string }>, more: object = {}) =>
  config({ interval: '10s', threshold: 2, maxWeight: 50, stepWeight: 25, metrics: [], webhooks: hooks.map((h) => ({ ...h, url: 'http://hooks.test/' })), ...more });

interface Row extends StepRow {
  events?: string[];
  requeue?: number;
  check?: (r: Decided) => void;
}

const rows: Row[] = [
  // ---- opted out mid-release (a Namespace label removed: nobody could deny it) ----------------
  {
    name: 'opted out at weight 25: routes back to stable first, canary deleted, unpaused into the new template, release cleared, a Warning says why',
    o: { ...obs({ status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 75, canary: 25 } }), stable: { ...obs({}).stable, status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) }), optedOut: true } },
    phase: 'Succeeded',
    weight: 0,
    actions: ['setWeight', 'deleteCanary', 'unpauseStable', 'clearRelease', 'emitEvent', 'writeStatus'],
    check: (d) => {
      assert.equal(d.status?.cancelled, true);
      const ev = eventActions(d.actions)[0]!;
      assert.equal(ev.warning, true);
      assert.equal(ev.reason, 'OptedOut');
      assert.match(ev.message, /no longer opted in .* rolls out its current template as a plain Deployment/);
      assert.ok(!d.actions.some((a) => a.type === 'clearRelease' && a.failedRevision), 'not a failure: nothing is recorded against the revision');
    },
  },
  {
    name: 'opted out with no release in progress: nothing to do',
    o: { ...obs({ revision: undefined, stableRevision: undefined, paused: false }, { routes: undefined }), stable: { ...obs({ revision: undefined, stableRevision: undefined, paused: false }).stable, optedOut: true } },
    actions: [],
  },
  // ---- idle --------------------------------------------------------------------------------
  { name: 'idle without status or canary does nothing', o: obs({ revision: undefined, stableRevision: undefined, paused: false }, { routes: undefined }), actions: [] },
  {
    name: 'idle with a leftover canary deletes it',
    o: obs({ revision: undefined, paused: false, status: status({ phase: 'Succeeded' }) }, { canary: readyCanary() }),
    actions: ['deleteCanary', 'emitEvent'],
  },
  {
    name: 'revision removed by hand mid-release: route to stable, delete canary, Failed',
    o: obs({ revision: undefined, status: status({ phase: 'Progressing', weight: 25, stepIndex: 0 }) }, { routes: { stable: 75, canary: 25 }, canary: readyCanary() }),
    phase: 'Failed',
    actions: ['setWeight', 'deleteCanary', 'emitEvent', 'writeStatus'],
    absent: ['unpauseStable', 'clearRelease'],
  },
  // ---- new release -------------------------------------------------------------------------
  {
    name: 'new revision: Initializing, routes ensured at 0, canary created with ceil(2*50%)=1 replica',
    o: obs({}, { routes: undefined }),
    phase: 'Initializing',
    actions: ['ensureRoutes', 'setWeight', 'emitEvent', 'ensureCanary', 'emitEvent', 'writeStatus'],
    events: ['New revision detected review.test', 'Waiting for review-canary.test rollout to finish: 0 of 1 new replicas have been updated'],
    requeue: 60 * SEC,
    check: (r) => assert.deepEqual(r.actions.find((a) => a.type === 'ensureCanary'), { type: 'ensureCanary', revision: 'new1', replicas: 1 }),
  },
  {
    name: 'terminal status of the same revision with the revision annotation back: a new release',
    o: obs({ status: status({ phase: 'Failed', weight: 0 }) }),
    phase: 'Initializing',
    events: ['New revision detected review.test', 'Waiting for review-canary.test rollout to finish: 0 of 1 new replicas have been updated'],
  },
  {
    name: 'canary not ready yet, within the deadline: wait, requeue at the deadline',
    o: obs({ status: status({ message: 'Waiting for review-canary.test rollout to finish: 0 of 1 updated replicas are available' }) }, { canary: readyCanary({ availableReplicas: 0, updatedReplicas: 1 }) }),
    at: T0 + 20 * SEC,
    phase: 'Initializing',
    actions: [],
    requeue: 40 * SEC,
  },
  {
    // A new revision replaces the canary's template: until its own pods are available, the
    // old revision's pods still count in availableReplicas and must not make it look ready.
    name: 'canary on the new template with only the old revision\'s pod available: not ready, says so',
    o: obs({ status: status({}) }, { canary: readyCanary({ generation: 2, observedGeneration: 2, statusReplicas: 2, updatedReplicas: 1, availableReplicas: 1 }) }),
    at: T0 + 20 * SEC,
    phase: 'Initializing',
    events: ['Waiting for review-canary.test rollout to finish: 1 old replicas are pending termination'],
    requeue: 40 * SEC,
  },
  {
    name: 'at a due step, a canary whose new pod is not available while the old one still is: halt, no weight change',
    o: obs({ status: status({ phase: 'Progressing', weight: 10, stepIndex: 0, lastCheckAt: iso(T0) }) }, { canary: readyCanary({ statusReplicas: 2, updatedReplicas: 1, availableReplicas: 1 }), routes: { stable: 90, canary: 10 } }),
    at: T0 + 60 * SEC,
    phase: 'Progressing',
    weight: 10,
    events: ['Halt review.test advancement: waiting for review-canary.test to be ready (1 old replicas are pending termination)'],
  },
  {
    name: 'canary deleted by hand mid-release: recreated with a Warning that says so, the analysis halts meanwhile',
    o: obs({ status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) }) }, { routes: { stable: 75, canary: 25 } }),
    at: T0 + 60 * SEC,
    phase: 'Progressing',
    weight: 25,
    actions: ['ensureCanary', 'emitEvent', 'writeStatus'],
    events: ['Halt review.test advancement: waiting for review-canary.test to be ready (it does not exist)'],
    check: (r) => assert.match((r.actions[0] as { recreated?: string }).recreated ?? '', /^review-canary\.test was deleted during the release of revision new1; recreated it/),
  },
  {
    // The analysis annotation edited mid-release: the next step is the new plan's first weight
    // above the current traffic, not the old step index read against the new plan.
    name: 'plan changed mid-release (10..50 at 30 -> steps of 20 up to 40): advance to 40, then promote',
    o: obs({ config: config({ interval: '10s', threshold: 2, maxWeight: 40, stepWeight: 20, metrics: [] }), status: status({ phase: 'Progressing', weight: 30, stepIndex: 2, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 70, canary: 30 } }),
    at: T0 + 10 * SEC,
    phase: 'Progressing',
    weight: 40,
    events: ['Advance review.test canary weight 40'],
    check: (r) => assert.equal(written(r)!.stepIndex, 1),
  },
  {
    name: 'plan shortened below the current weight mid-release: promote at the next passing check',
    o: obs({ config: config({ interval: '10s', threshold: 2, maxWeight: 20, stepWeight: 10, metrics: [] }), status: status({ phase: 'Progressing', weight: 30, stepIndex: 2, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 70, canary: 30 } }),
    at: T0 + 10 * SEC,
    phase: 'Promoting',
    events: ['Promoting revision new1 into review.test'],
  },
  {
    name: 'Promoting, the rollout moving on (the controller caught up, a pod updated): the status follows, no new Waiting Event',
    o: obs({ paused: false, generation: 3, observedGeneration: 3, statusReplicas: 3, updatedReplicas: 1, availableReplicas: 2, status: status({ phase: 'Promoting', weight: 50, stepIndex: 1, message: 'Waiting for review.test rollout to finish: waiting for the Deployment controller to see the new spec', saidAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 } }),
    at: T0 + 5 * SEC,
    phase: 'Promoting',
    events: [],
    check: (r) => assert.equal(written(r)?.message, 'Waiting for review.test rollout to finish: 1 of 2 new replicas have been updated'),
  },
  {
    name: 'Promoting, the rollout moving on and then its pods refused: that is said',
    o: obs({ paused: false, generation: 3, observedGeneration: 3, statusReplicas: 2, updatedReplicas: 1, availableReplicas: 2, replicaFailure: 'FailedCreate', status: status({ phase: 'Promoting', weight: 50, stepIndex: 1, message: 'Waiting for review.test rollout to finish: 1 of 2 new replicas have been updated', saidAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 } }),
    at: T0 + 5 * SEC,
    phase: 'Promoting',
    events: ['Waiting for review.test rollout to finish: 1 of 2 new replicas have been updated; its pods cannot be created (condition ReplicaFailure, FailedCreate: kubectl describe deployment shows why, e.g. a ResourceQuota)'],
  },
  {
    name: 'canary rollout moving on (0 -> 1 of 2 updated): no new Waiting Event, said again after 30 minutes',
    o: obs({ replicas: 4, status: status({ message: 'Waiting for review-canary.test rollout to finish: 0 of 2 new replicas have been updated', saidAt: iso(T0) }) }, { canary: readyCanary({ replicas: 2, statusReplicas: 1, updatedReplicas: 1, availableReplicas: 1 }) }),
    at: T0 + 5 * SEC,
    phase: 'Initializing',
    events: [],
    check: (r) => {
      assert.equal(written(r)?.message, 'Waiting for review-canary.test rollout to finish: 1 of 2 new replicas have been updated');
      const slow = config(undefined, { 'kube-canary.io/progress-deadline': '2h' });
      const later = runRow({ name: 'later', o: obs({ replicas: 4, config: slow, status: { ...written(r)!, lastTransitionAt: iso(T0) } }, { canary: readyCanary({ replicas: 2, statusReplicas: 1, updatedReplicas: 1, availableReplicas: 1 }) }), at: T0 + HOLD_REPEAT_MS + 1 });
      assert.deepEqual(events(later?.actions ?? []), ['Waiting for review-canary.test rollout to finish: 1 of 2 new replicas have been updated']);
    },
  },
  {
    name: 'plan cut below the current weight mid-release: the canary keeps the pods for the weight it carries until then',
    o: obs({ replicas: 2, config: config({ interval: '10s', threshold: 2, maxWeight: 30, stepWeight: 10, metrics: [] }), status: status({ phase: 'Progressing', weight: 60, stepIndex: 5, lastCheckAt: iso(T0) }) }, { canary: readyCanary({ replicas: 2, statusReplicas: 2, updatedReplicas: 2, availableReplicas: 2 }), routes: { stable: 40, canary: 60 } }),
    at: T0 + 5 * SEC,
    phase: 'Progressing',
    weight: 60,
    check: (r) => assert.ok(!r.actions.some((a) => a.type === 'ensureCanary'), `no scale-down to 1 pod while it carries 60%: ${JSON.stringify(r.actions)}`),
  },
  {
    name: 'canary not ready within the progress deadline: RollingBack at weight 0',
    o: obs({ status: status() }, { canary: readyCanary({ availableReplicas: 0 }) }),
    at: T0 + 61 * SEC,
    phase: 'RollingBack',
    weight: 0,
    events: ['Rolling back review.test: review-canary.test was not ready within the progress deadline 1m'],
    requeue: 0,
  },
  {
    name: 'canary of an older revision does not count as ready and is updated',
    o: obs({ status: status() }, { canary: readyCanary({ templateHash: 'other' }) }),
    at: T0 + 5 * SEC,
    phase: 'Initializing',
    actions: ['ensureCanary', 'emitEvent', 'writeStatus'],
  },
  {
    name: 'canary ready: Progressing, first step applied at once',
    o: obs({ status: status() }, { canary: readyCanary() }),
    at: T0 + 5 * SEC,
    phase: 'Progressing',
    weight: 25,
    actions: ['setWeight', 'emitEvent', 'writeStatus'],
    events: ['Advance review.test canary weight 25'],
    requeue: 10 * SEC,
    check: (r) => assert.deepEqual(r.actions[0], { type: 'setWeight', canary: 25 }),
  },
  // ---- progressing -------------------------------------------------------------------------
  {
    name: 'not due yet: nothing, requeue when due',
    o: obs({ status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 75, canary: 25 } }),
    at: T0 + 4 * SEC,
    actions: [],
    requeue: 6 * SEC,
  },
  {
    name: 'due with metrics configured: asks for the analysis gates',
    o: obs({ config: config({ interval: '10s', threshold: 2, maxWeight: 50, stepWeight: 25 }), status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 75, canary: 25 } }),
    at: T0 + 10 * SEC,
    need: 'analysis',
  },
  {
    name: 'analysis passed: next weight',
    o: obs({ config: config({ interval: '10s', threshold: 2, maxWeight: 50, stepWeight: 25 }), status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 75, canary: 25 }, gates: { analysis: pass } }),
    at: T0 + 10 * SEC,
    phase: 'Progressing',
    weight: 50,
    actions: ['setWeight', 'emitEvent', 'writeStatus'],
    events: ['Advance review.test canary weight 50'],
  },
  {
    name: 'analysis failed below threshold: halt, weight kept, failedChecks 1',
    o: obs({ config: config({ interval: '10s', threshold: 2, maxWeight: 50, stepWeight: 25 }), status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 75, canary: 25 }, gates: { analysis: failing() } }),
    at: T0 + 10 * SEC,
    phase: 'Progressing',
    weight: 25,
    actions: ['emitEvent', 'writeStatus'],
    events: ['Halt review.test advancement (1 of 2 failed checks): request-success-rate 70 < 99'],
    check: (r) => {
      assert.equal(written(r)!.failedChecks, 1);
      assert.equal(written(r)!.lastCheckAt, iso(T0 + 10 * SEC));
    },
  },
  {
    name: 'analysis failed at threshold: RollingBack, traffic back to stable first',
    o: obs({ config: config({ interval: '10s', threshold: 2, maxWeight: 50, stepWeight: 25 }), status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, failedChecks: 1, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 75, canary: 25 }, gates: { analysis: failing() } }),
    at: T0 + 10 * SEC,
    phase: 'RollingBack',
    weight: 0,
    actions: ['setWeight', 'emitEvent', 'writeStatus'],
    events: ['Rolling back review.test: failed checks threshold reached 2 (request-success-rate 70 < 99)'],
  },
  {
    name: 'canary not ready at a due step halts (no failed check), deadline counted from then',
    o: obs({ status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) }) }, { canary: readyCanary({ availableReplicas: 0 }), routes: { stable: 75, canary: 25 } }),
    at: T0 + 10 * SEC,
    phase: 'Progressing',
    weight: 25,
    events: ['Halt review.test advancement: waiting for review-canary.test to be ready (0 of 1 updated replicas are available)'],
    requeue: 60 * SEC,
    check: (r) => {
      assert.equal(written(r)!.failedChecks, 0);
      assert.equal(written(r)!.canaryUnreadySince, iso(T0 + 10 * SEC));
    },
  },
  {
    name: 'canary unready past the progress deadline: RollingBack',
    o: obs({ status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0), canaryUnreadySince: iso(T0) }) }, { canary: readyCanary({ availableReplicas: 0 }), routes: { stable: 75, canary: 25 } }),
    at: T0 + 60 * SEC,
    phase: 'RollingBack',
    events: ['Rolling back review.test: review-canary.test has not been ready for the progress deadline 1m'],
  },
  {
    name: 'canary ready again: the unready mark is cleared and analysis goes on',
    o: obs({ status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0), canaryUnreadySince: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 75, canary: 25 } }),
    at: T0 + 10 * SEC,
    phase: 'Progressing',
    weight: 50,
    check: (r) => assert.equal(written(r)!.canaryUnreadySince, undefined),
  },
  {
    name: 'a rollback webhook answering 2xx rolls back at once',
    o: obs({ config: withHooks([{ name: 'abort-switch', type: 'rollback' }]), status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) }) }, {
      canary: readyCanary(),
      routes: { stable: 75, canary: 25 },
      gates: { analysis: { passed: true, rollbackRequested: true, results: [{ name: 'abort-switch', passed: true, message: 'webhook abort-switch answered 200' }] } },
    }),
    at: T0 + 10 * SEC,
    phase: 'RollingBack',
    events: ['Rolling back review.test: rollback webhook abort-switch asked for a rollback'],
  },
  {
    name: 'last step passed: Promoting, the stable Deployment is unpaused in the same write',
    o: obs({ status: status({ phase: 'Progressing', weight: 50, stepIndex: 1, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 } }),
    at: T0 + 10 * SEC,
    phase: 'Promoting',
    weight: 50,
    actions: ['unpauseStable', 'emitEvent', 'writeStatus'],
    events: ['Promoting revision new1 into review.test'],
  },
  {
    name: 'routes changed outside kube-canary (or by an interrupted step): re-applied first, with a Warning',
    o: obs({ status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 100, canary: 0 } }),
    at: T0 + 1 * SEC,
    actions: ['setWeight', 'emitEvent'],
    events: ['The traffic routes of review.test sent 0% to the canary and 100% to stable instead of 25%; set to 25% (changed outside kube-canary, or a step of ours cut short by a restart or by a write to the Deployment at the same moment)'],
    check: (r) => assert.deepEqual(r.actions[0], { type: 'setWeight', canary: 25 }),
  },
  {
    name: 'routes deleted mid-release: recreated at the release weight, with a Warning',
    o: obs({ status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: undefined }),
    at: T0 + 1 * SEC,
    actions: ['ensureRoutes', 'setWeight', 'emitEvent'],
    events: ['The traffic routes of review.test were missing (deleted?); recreated with 25% on the canary'],
  },
  {
    name: 'routing objects disagreeing with each other: all set to the release weight, with a Warning that says so',
    o: obs({ status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: -1, canary: -1 } }),
    at: T0 + 1 * SEC,
    actions: ['setWeight', 'emitEvent'],
    events: ['The traffic routes of review.test disagreed with each other (several objects route it); all set to 25% on the canary'],
  },
  {
    name: 'routes already at the next weight (a step whose commit was interrupted): no Warning',
    o: obs({ status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 }, gates: { analysis: pass } }),
    at: T0 + 60 * SEC,
    phase: 'Progressing',
    weight: 50,
    events: ['Advance review.test canary weight 50'],
  },
  {
    name: 'canary deleted while Paused: recreated (the routes still send it traffic), with the Warning; still Paused',
    o: obs({ status: status({ phase: 'Paused', weight: 50, stepIndex: 1, lastCheckAt: iso(T0) }) }, { routes: { stable: 50, canary: 50 } }),
    at: T0 + 1 * SEC,
    phase: 'Paused',
    weight: 50,
    actions: ['ensureCanary'],
    check: (r) => assert.match((r.actions[0] as { recreated?: string }).recreated ?? '', /^review-canary\.test was deleted during the release of revision new1; recreated it/),
  },
  {
    name: 'Paused with its canary in place: nothing to do',
    o: obs({ status: status({ phase: 'Paused', weight: 50, stepIndex: 1, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 } }),
    at: T0 + 1 * SEC,
    phase: 'Paused',
    actions: [],
  },
  {
    name: 'canary deleted by hand mid-release, between steps: recreated at once, with the Warning',
    o: obs({ status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) }) }, { routes: { stable: 75, canary: 25 } }),
    at: T0 + 1 * SEC,
    actions: ['ensureCanary'],
    check: (r) => assert.match((r.actions[0] as { recreated?: string }).recreated ?? '', /was deleted during the release/),
  },
  // ---- confirm gates -----------------------------------------------------------------------
  {
    name: 'confirm-rollout pending: ask before creating anything',
    o: obs({ config: withHooks([{ name: 'go', type: 'confirm-rollout' }]) }, { routes: undefined }),
    need: 'confirm-rollout',
  },
  {
    name: 'confirm-rollout refused: Waiting, no canary yet',
    o: obs({ config: withHooks([{ name: 'go', type: 'confirm-rollout' }]) }, { routes: undefined, gates: { 'confirm-rollout': failing('webhook go answered 403') } }),
    phase: 'Waiting',
    absent: ['ensureCanary'],
    check: (r) => assert.equal(written(r)!.waitingOn, 'confirm-rollout'),
  },
  {
    name: 'confirm-rollout refused for a new revision mid-release: traffic back to 0, then the superseded canary deleted',
    o: obs({ revision: 'new2', templateHash: 'new2', config: withHooks([{ name: 'go', type: 'confirm-rollout' }]), status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 75, canary: 25 }, gates: { 'confirm-rollout': failing('webhook go answered 503') } }),
    at: T0 + 3 * SEC,
    phase: 'Waiting',
    weight: 0,
    actions: ['ensureRoutes', 'setWeight', 'emitEvent', 'deleteCanary', 'emitEvent', 'writeStatus'],
    events: ['New revision detected review.test: analysis restarts (revision new1 superseded by new2)', 'Waiting for confirm-rollout approval of review.test: webhook go answered 503'],
    check: (r) => assert.deepEqual(r.actions[1], { type: 'setWeight', canary: 0 }),
  },
  {
    name: 'Waiting on confirm-rollout between checks: no canary is made',
    o: obs({ config: withHooks([{ name: 'go', type: 'confirm-rollout' }]), status: status({ phase: 'Waiting', waitingOn: 'confirm-rollout', lastCheckAt: iso(T0) }) }),
    at: T0 + 1 * SEC,
    phase: 'Waiting',
    actions: [],
    requeue: 9 * SEC,
  },
  {
    name: 'Waiting on confirm-rollout with a canary left over (a superseded revision): deleted, not updated',
    o: obs({ config: withHooks([{ name: 'go', type: 'confirm-rollout' }]), status: status({ phase: 'Waiting', waitingOn: 'confirm-rollout', lastCheckAt: iso(T0) }) }, { canary: readyCanary({ templateHash: 'new0' }) }),
    at: T0 + 1 * SEC,
    actions: ['deleteCanary'],
  },
  {
    name: 'Waiting on confirm-rollout, due: the gate is asked for the Waiting release',
    o: obs({ config: withHooks([{ name: 'go', type: 'confirm-rollout' }]), status: status({ phase: 'Waiting', waitingOn: 'confirm-rollout', lastCheckAt: iso(T0) }) }),
    at: T0 + 10 * SEC,
    need: 'confirm-rollout',
  },
  {
    name: 'Waiting on confirm-rollout, still refused for the same reason: still Waiting, no canary, no new Event, the wait\'s start kept',
    o: obs({ config: withHooks([{ name: 'go', type: 'confirm-rollout' }]), status: status({ phase: 'Waiting', waitingOn: 'confirm-rollout', lastCheckAt: iso(T0), saidAt: iso(T0), message: 'Waiting for confirm-rollout approval of review.test: webhook go answered 503' }) }, { gates: { 'confirm-rollout': failing('webhook go answered 503') } }),
    at: T0 + 10 * SEC,
    phase: 'Waiting',
    actions: ['writeStatus'],
    requeue: 10 * SEC,
    check: (r) => {
      const s = written(r)!;
      assert.equal(s.waitingOn, 'confirm-rollout');
      assert.equal(s.lastTransitionAt, iso(T0));
      assert.equal(s.lastCheckAt, iso(T0 + 10 * SEC));
    },
  },
  {
    // As for the other confirm gates: one wait, whatever each call of the hook answered.
    name: 'Waiting on confirm-rollout, refused for another reason: the status says it, no new Event',
    o: obs({ config: withHooks([{ name: 'go', type: 'confirm-rollout' }]), status: status({ phase: 'Waiting', waitingOn: 'confirm-rollout', lastCheckAt: iso(T0), saidAt: iso(T0), message: 'Waiting for confirm-rollout approval of review.test: webhook go answered 503' }) }, { gates: { 'confirm-rollout': failing('webhook go answered 403') } }),
    at: T0 + 10 * SEC,
    phase: 'Waiting',
    actions: ['writeStatus'],
    check: (r) => assert.equal(written(r)!.message, 'Waiting for confirm-rollout approval of review.test: webhook go answered 403'),
  },
  {
    name: 'Waiting on confirm-rollout, approved after longer than the progress deadline: Initializing, canary created (never existed: no recreation Warning), its deadline counted from now',
    o: obs({ config: withHooks([{ name: 'go', type: 'confirm-rollout' }]), status: status({ phase: 'Waiting', waitingOn: 'confirm-rollout', lastCheckAt: iso(T0 + 110 * SEC), message: 'Waiting for confirm-rollout approval of review.test: webhook go answered 503' }) }, { gates: { 'confirm-rollout': pass } }),
    at: T0 + 120 * SEC,
    phase: 'Initializing',
    actions: ['ensureCanary', 'emitEvent', 'writeStatus'],
    events: ['Waiting for review-canary.test rollout to finish: 0 of 1 new replicas have been updated'],
    requeue: 60 * SEC,
    check: (r) => {
      const s = written(r)!;
      assert.equal(s.rolloutConfirmed, true);
      assert.equal(s.waitingOn, undefined);
      assert.equal(s.lastCheckAt, undefined);
      assert.equal(s.lastTransitionAt, iso(T0 + 120 * SEC));
      assert.equal((r.actions[0] as { recreated?: string }).recreated, undefined);
    },
  },
  {
    name: 'skip-analysis set while confirm-rollout holds: the gate no longer asked, the canary created',
    o: obs({ config: config({ interval: '10s', maxWeight: 50, stepWeight: 25, metrics: [], webhooks: [{ name: 'go', type: 'confirm-rollout', url: 'http://hooks.test/' }] }, { 'kube-canary.io/skip-analysis': 'true' }), status: status({ phase: 'Waiting', waitingOn: 'confirm-rollout', lastCheckAt: iso(T0) }) }),
    at: T0 + 1 * SEC,
    phase: 'Initializing',
    actions: ['ensureCanary', 'emitEvent', 'writeStatus'],
  },
  {
    name: 'Paused before confirm-rollout approved: no canary is made',
    o: obs({ config: withHooks([{ name: 'go', type: 'confirm-rollout' }]), status: status({ phase: 'Paused' }) }),
    at: T0 + 1 * SEC,
    phase: 'Paused',
    actions: [],
  },
  {
    name: 'Paused after confirm-rollout approved, its canary deleted: recreated as in any phase',
    o: obs({ config: withHooks([{ name: 'go', type: 'confirm-rollout' }]), status: status({ phase: 'Paused', rolloutConfirmed: true }) }),
    at: T0 + 1 * SEC,
    actions: ['ensureCanary'],
  },
  {
    name: 'pre-rollout failing counts as a failed check',
    o: obs({ config: withHooks([{ name: 'warm', type: 'pre-rollout' }]), status: status() }, { canary: readyCanary(), gates: { 'pre-rollout': failing('webhook warm answered 500') } }),
    at: T0 + 5 * SEC,
    phase: 'Initializing',
    check: (r) => {
      assert.equal(written(r)!.failedChecks, 1);
      assert.equal(r.requeueAfterMs, 10 * SEC);
    },
  },
  {
    name: 'pre-rollout passing: Progressing at the first weight',
    o: obs({ config: withHooks([{ name: 'warm', type: 'pre-rollout' }]), status: status() }, { canary: readyCanary(), gates: { 'pre-rollout': pass } }),
    at: T0 + 5 * SEC,
    phase: 'Progressing',
    weight: 25,
    check: (r) => assert.equal(written(r)!.preRolloutDone, true),
  },
  {
    name: 'confirm-traffic-increase refused: Waiting at the same weight',
    o: obs({ config: withHooks([{ name: 'more', type: 'confirm-traffic-increase' }]), status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 75, canary: 25 }, gates: { 'confirm-traffic-increase': failing('webhook more answered 403') } }),
    at: T0 + 10 * SEC,
    phase: 'Waiting',
    weight: 25,
    events: ['Waiting for confirm-traffic-increase approval of review.test: webhook more answered 403'],
  },
  {
    name: 'Waiting on confirm-traffic-increase, approved: advance',
    o: obs({ config: withHooks([{ name: 'more', type: 'confirm-traffic-increase' }]), status: status({ phase: 'Waiting', waitingOn: 'confirm-traffic-increase', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 75, canary: 25 }, gates: { 'confirm-traffic-increase': pass } }),
    at: T0 + 10 * SEC,
    phase: 'Progressing',
    weight: 50,
    events: ['Advance review.test canary weight 50'],
  },
  // While a confirm gate holds, the canary keeps its traffic and is still judged every interval.
  {
    name: 'Waiting on confirm-promotion: the analysis runs first',
    o: obs({ config: withHooks([{ name: 'ship', type: 'confirm-promotion' }], { metrics: [{ name: 'request-success-rate', thresholdRange: { min: 99 } }] }), status: status({ phase: 'Waiting', waitingOn: 'confirm-promotion', weight: 50, stepIndex: 1, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 } }),
    at: T0 + 10 * SEC,
    need: 'analysis',
  },
  {
    name: 'Waiting on confirm-promotion, a metric check fails: a failed check, still Waiting, not promoted',
    o: obs({ config: withHooks([{ name: 'ship', type: 'confirm-promotion' }], { metrics: [{ name: 'request-success-rate', thresholdRange: { min: 99 } }] }), status: status({ phase: 'Waiting', waitingOn: 'confirm-promotion', weight: 50, stepIndex: 1, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 }, gates: { analysis: failing(), 'confirm-promotion': pass } }),
    at: T0 + 10 * SEC,
    phase: 'Waiting',
    weight: 50,
    absent: ['unpauseStable'],
    events: ['Halt review.test advancement (1 of 2 failed checks): request-success-rate 70 < 99'],
    check: (r) => assert.equal(written(r)!.failedChecks, 1),
  },
  {
    name: 'Waiting on confirm-traffic-increase, failed checks reach the threshold: RollingBack',
    o: obs({ config: withHooks([{ name: 'more', type: 'confirm-traffic-increase' }], { metrics: [{ name: 'request-success-rate', thresholdRange: { min: 99 } }] }), status: status({ phase: 'Waiting', waitingOn: 'confirm-traffic-increase', weight: 25, stepIndex: 0, failedChecks: 1, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 75, canary: 25 }, gates: { analysis: failing() } }),
    at: T0 + 10 * SEC,
    phase: 'RollingBack',
    weight: 0,
  },
  {
    name: 'Waiting on confirm-promotion, a rollback webhook asks: RollingBack',
    o: obs({ config: withHooks([{ name: 'ship', type: 'confirm-promotion' }, { name: 'abort-switch', type: 'rollback' }]), status: status({ phase: 'Waiting', waitingOn: 'confirm-promotion', weight: 50, stepIndex: 1, lastCheckAt: iso(T0) }) }, {
      canary: readyCanary(),
      routes: { stable: 50, canary: 50 },
      gates: { analysis: { passed: true, rollbackRequested: true, results: [{ name: 'abort-switch', passed: true, message: 'webhook abort-switch asked for a rollback' }] } },
    }),
    at: T0 + 10 * SEC,
    phase: 'RollingBack',
    events: ['Rolling back review.test: rollback webhook abort-switch asked for a rollback'],
  },
  {
    name: 'confirm-promotion refused at the last step: Waiting, still paused',
    o: obs({ config: withHooks([{ name: 'ship', type: 'confirm-promotion' }]), status: status({ phase: 'Progressing', weight: 50, stepIndex: 1, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 }, gates: { 'confirm-promotion': failing('webhook ship answered 403') } }),
    at: T0 + 10 * SEC,
    phase: 'Waiting',
    absent: ['unpauseStable'],
  },
  {
    name: 'Waiting on confirm-promotion, still refused: no new event',
    o: obs({ config: withHooks([{ name: 'ship', type: 'confirm-promotion' }]), status: status({ phase: 'Waiting', waitingOn: 'confirm-promotion', weight: 50, stepIndex: 1, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 }, gates: { 'confirm-promotion': failing('webhook ship answered 403') } }),
    at: T0 + 10 * SEC,
    phase: 'Waiting',
    actions: ['writeStatus'],
  },
  {
    name: 'Waiting on confirm-promotion, approved: Promoting',
    o: obs({ config: withHooks([{ name: 'ship', type: 'confirm-promotion' }]), status: status({ phase: 'Waiting', waitingOn: 'confirm-promotion', weight: 50, stepIndex: 1, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 }, gates: { 'confirm-promotion': pass } }),
    at: T0 + 10 * SEC,
    phase: 'Promoting',
    actions: ['unpauseStable', 'emitEvent', 'writeStatus'],
  },
  // ---- skip analysis -----------------------------------------------------------------------
  {
    name: 'skip-analysis: promote as soon as the canary is ready, no gates',
    o: obs({ config: config({ interval: '10s', maxWeight: 50, stepWeight: 25, webhooks: [{ name: 'go', type: 'confirm-rollout', url: 'http://h.test/' }] }, { 'kube-canary.io/skip-analysis': 'true' }), status: status() }, { canary: readyCanary() }),
    at: T0 + 5 * SEC,
    phase: 'Promoting',
    weight: 0,
    actions: ['unpauseStable', 'emitEvent', 'writeStatus'],
    events: ['Promoting revision new1 into review.test (analysis skipped)'],
  },
  {
    name: 'skip-analysis set mid-release (Progressing at 25, ready canary, step not due): promote now, the analysis skipped',
    o: obs({ config: config({ interval: '10s', maxWeight: 50, stepWeight: 25, metrics: [] }, { 'kube-canary.io/skip-analysis': 'true' }), status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 75, canary: 25 } }),
    at: T0 + 1 * SEC,
    phase: 'Promoting',
    weight: 25,
    events: ['Promoting revision new1 into review.test (analysis skipped)'],
    check: (r) => assert.ok(r.actions.some((a) => a.type === 'unpauseStable')),
  },
  {
    name: 'skip-analysis set while a confirm gate holds (Waiting at 25): promote now, the gate no longer asked',
    o: obs({ config: config({ interval: '10s', threshold: 2, maxWeight: 50, stepWeight: 25, metrics: [], webhooks: [{ name: 'go', type: 'confirm-traffic-increase', url: 'http://hooks.test/' }] }, { 'kube-canary.io/skip-analysis': 'true' }), status: status({ phase: 'Waiting', waitingOn: 'confirm-traffic-increase', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 75, canary: 25 } }),
    at: T0 + 1 * SEC,
    phase: 'Promoting',
    events: ['Promoting revision new1 into review.test (analysis skipped)'],
  },
  // ---- promoting / finalising --------------------------------------------------------------
  {
    name: 'Promoting, the canary deleted: all traffic to the stable Deployment at once (it rolls out the same revision), with a Warning; not recreated',
    o: obs({ paused: false, generation: 3, observedGeneration: 3, statusReplicas: 3, updatedReplicas: 1, availableReplicas: 2, status: status({ phase: 'Promoting', weight: 50, stepIndex: 1 }) }, { routes: { stable: 50, canary: 50 } }),
    at: T0 + 5 * SEC,
    phase: 'Promoting',
    weight: 0,
    absent: ['ensureCanary'],
    check: (r) => {
      assert.ok(r.actions.some((a) => a.type === 'setWeight' && (a as { canary: number }).canary === 0), JSON.stringify(r.actions));
      const ev = eventActions(r.actions).find((e) => e.reason === 'CanaryDeleted')!;
      assert.equal(ev.warning, true);
      assert.match(ev.message, /^review-canary\.test was deleted during the promotion of revision new1; all traffic goes to review\.test, which is rolling out that revision$/);
    },
  },
  {
    name: 'Promoting, stable still rolling: wait with the rollout count',
    o: obs({ paused: false, generation: 3, observedGeneration: 3, statusReplicas: 3, updatedReplicas: 1, availableReplicas: 2, status: status({ phase: 'Promoting', weight: 50, stepIndex: 1 }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 } }),
    at: T0 + 5 * SEC,
    phase: 'Promoting',
    events: ['Waiting for review.test rollout to finish: 1 of 2 new replicas have been updated'],
    requeue: 55 * SEC,
  },
  {
    name: 'Promoting, stable pods refused (ReplicaFailure, e.g. a ResourceQuota): the wait names the condition, in words that stay the same across retries',
    o: obs({ paused: false, generation: 3, observedGeneration: 3, statusReplicas: 2, updatedReplicas: 0, availableReplicas: 2, replicaFailure: 'FailedCreate', status: status({ phase: 'Promoting', weight: 50, stepIndex: 1 }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 } }),
    at: T0 + 5 * SEC,
    phase: 'Promoting',
    events: ['Waiting for review.test rollout to finish: 0 of 2 new replicas have been updated; its pods cannot be created (condition ReplicaFailure, FailedCreate: kubectl describe deployment shows why, e.g. a ResourceQuota)'],
    requeue: 55 * SEC,
  },
  {
    name: 'Promoting, stable status not yet observed for the new generation: not done',
    o: obs({ paused: false, generation: 3, observedGeneration: 2, updatedReplicas: 2, availableReplicas: 2, status: status({ phase: 'Promoting', weight: 50, stepIndex: 1 }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 } }),
    at: T0 + 5 * SEC,
    phase: 'Promoting',
  },
  {
    name: 'Promoting past the deadline: RollingBack',
    o: obs({ paused: false, updatedReplicas: 1, availableReplicas: 1, status: status({ phase: 'Promoting', weight: 50, stepIndex: 1 }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 } }),
    at: T0 + 60 * SEC,
    phase: 'RollingBack',
    weight: 0,
  },
  {
    name: 'Promoting, re-paused by something else: unpause again',
    o: obs({ paused: true, status: status({ phase: 'Promoting', weight: 50, stepIndex: 1 }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 } }),
    at: T0 + 5 * SEC,
    actions: ['unpauseStable', 'emitEvent', 'writeStatus'],
  },
  {
    name: 'stable fully rolled out: Finalising, all traffic to stable',
    o: obs({ paused: false, updatedReplicas: 2, availableReplicas: 2, status: status({ phase: 'Promoting', weight: 50, stepIndex: 1 }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 } }),
    at: T0 + 5 * SEC,
    phase: 'Finalising',
    weight: 0,
    actions: ['setWeight', 'emitEvent', 'writeStatus'],
    events: ['Routing all traffic to review.test'],
    requeue: 0,
  },
  {
    name: 'Finalising: delete canary, clear the release, Succeeded',
    o: obs({ paused: false, updatedReplicas: 2, availableReplicas: 2, status: status({ phase: 'Finalising', weight: 0, stepIndex: 1 }) }, { canary: readyCanary() }),
    at: T0 + 5 * SEC,
    phase: 'Succeeded',
    actions: ['deleteCanary', 'clearRelease', 'emitEvent', 'notify', 'writeStatus'],
    events: ['Promotion completed! Scaling down review-canary.test'],
    check: (r) => assert.deepEqual(r.actions.find((a) => a.type === 'clearRelease'), { type: 'clearRelease' }),
  },
  // ---- rolling back ------------------------------------------------------------------------
  {
    name: 'RollingBack: asks for the stable ReplicaSet template',
    o: obs({ status: status({ phase: 'RollingBack', message: 'Rolling back review.test: failed checks threshold reached 2' }) }, { canary: readyCanary() }),
    need: 'stableTemplate',
  },
  {
    name: 'RollingBack with the stable template: restore, unpause, record the failed revision, Failed',
    o: obs({ status: status({ phase: 'RollingBack', message: 'Rolling back review.test: failed checks threshold reached 2' }) }, { canary: readyCanary(), stableTemplateFound: true }),
    phase: 'Failed',
    actions: ['deleteCanary', 'restoreStableTemplate', 'unpauseStable', 'clearRelease', 'emitEvent', 'notify', 'writeStatus'],
    events: ['Canary failed! Scaling down review-canary.test'],
    check: (r) => {
      assert.deepEqual(r.actions.find((a) => a.type === 'clearRelease'), { type: 'clearRelease', failedRevision: 'new1' });
      assert.deepEqual(r.actions.find((a) => a.type === 'restoreStableTemplate'), { type: 'restoreStableTemplate', revision: 'old0' });
      assert.match(written(r)!.message, /failed checks threshold reached 2/);
    },
  },
  {
    name: 'RollingBack of a release that never had a canary of ours (held, then aborted): says so instead of "Scaling down"',
    o: obs({ status: status({ phase: 'RollingBack', message: 'Rolling back review.test: aborted' }) }, { stableTemplateFound: true, routes: undefined }),
    phase: 'Failed',
    events: ['Canary failed! review.test stays on revision old0; no canary of it was running'],
  },
  {
    name: 'RollingBack without the stable ReplicaSet: stays paused, says why and the way out',
    o: obs({ status: status({ phase: 'RollingBack', message: 'Rolling back review.test: x' }) }, { stableTemplateFound: false }),
    phase: 'RollingBack',
    absent: ['unpauseStable', 'clearRelease'],
    events: ['Rolling back review.test: x | cannot restore the stable template: no ReplicaSet of review.test runs the stable revision old0; review.test stays paused with all traffic on stable until its template is set back to that revision (apply the previous manifest)'],
  },
  // ---- new revision mid-release, revert ----------------------------------------------------
  {
    name: 'new revision mid-release: traffic back to 0 first, canary updated, analysis restarts',
    o: obs({ revision: 'new2', templateHash: 'new2', status: status({ phase: 'Progressing', weight: 25, stepIndex: 0, failedChecks: 1, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 75, canary: 25 } }),
    at: T0 + 3 * SEC,
    phase: 'Initializing',
    weight: 0,
    actions: ['ensureRoutes', 'setWeight', 'emitEvent', 'ensureCanary', 'emitEvent', 'writeStatus'],
    check: (r) => {
      assert.deepEqual(r.actions[1], { type: 'setWeight', canary: 0 });
      const s = written(r)!;
      assert.equal(s.revision, 'new2');
      assert.equal(s.failedChecks, 0);
      assert.equal(s.stepIndex, -1);
      assert.equal(events(r.actions)[0], 'New revision detected review.test: analysis restarts (revision new1 superseded by new2)');
    },
  },
  {
    name: 'user reverted to the running template: cancel, unpause, no failure recorded',
    o: obs({ revision: 'old0', templateHash: 'old0', status: status({ phase: 'Progressing', weight: 25, stepIndex: 0 }) }, { canary: readyCanary(), routes: { stable: 75, canary: 25 } }),
    phase: 'Succeeded',
    weight: 0,
    actions: ['setWeight', 'deleteCanary', 'unpauseStable', 'clearRelease', 'emitEvent', 'writeStatus'],
    events: ['Release of revision new1 cancelled: review.test is back on its running revision old0'],
    check: (r) => {
      assert.deepEqual(r.actions.find((a) => a.type === 'clearRelease'), { type: 'clearRelease' });
      assert.equal(written(r)!.cancelled, true);
    },
  },
  // ---- configuration -----------------------------------------------------------------------
  {
    name: 'invalid configuration: hold, warn once, touch no routes',
    o: obs({ config: { ok: false, errors: ['kube-canary.io/analysis: analysis.stepWeight 50 is larger than analysis.maxWeight 25'] } }, { routes: undefined }),
    phase: 'Initializing',
    actions: ['emitEvent', 'writeStatus'],
    absent: ['ensureRoutes', 'setWeight', 'ensureCanary'],
  },
];

describe('progressor step()', () => {
  for (const row of rows) {
    it(row.name, () => {
      const d = runRow(row);
      if (!d) return;
      if (row.events) assert.deepEqual(events(d.actions), row.events);
      if (row.requeue !== undefined) assert.equal(d.requeueAfterMs, row.requeue);
      row.check?.(d);
    });
  }

  it('writes the status last among the stable-Deployment actions and never emits a status it did not change', () => {
    const s = status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0) });
    const r = decided(step(obs({ status: s }, { canary: readyCanary(), routes: { stable: 75, canary: 25 } }), T0 + SEC));
    assert.deepEqual(r.actions, []);
  });
});

describe('canary replica rule', () => {
  const table: Array<[number, number, number]> = [
    [0, 50, 1],
    [1, 10, 1],
    [2, 50, 1],
    [3, 50, 2],
    [10, 25, 3],
    [10, 100, 10],
    [7, 30, 3],
  ];
  for (const [stableReplicas, maxWeight, want] of table) {
    it(`ceil(${stableReplicas} * ${maxWeight}%) at least 1 = ${want}`, () => assert.equal(canaryReplicas(stableReplicas, maxWeight), want));
  }
});

describe('the record of a failed revision', () => {
  it('is written when a release fails, kept by the releases after it while failed-revision names it, and dropped after a retry', () => {
    const failedAt = T0 + 60 * SEC;
    const r = decided(step(obs({ status: status({ phase: 'RollingBack', message: 'Rolling back review.test: failed checks threshold reached 2' }) }, { canary: readyCanary(), stableTemplateFound: true }), failedAt));
    const failure = { revision: 'new1', at: iso(failedAt), message: 'Rolling back review.test: failed checks threshold reached 2' };
    assert.deepEqual(written(r)!.failure, failure);
    const after = written(r)!;
    // The next release (another revision), with new1 still recorded as failed:
    const next = decided(step(obs({ revision: 'new2', templateHash: 'new2', status: after, failedRevision: 'new1' }), failedAt + 60 * SEC));
    assert.equal(written(next)!.revision, 'new2');
    assert.deepEqual(written(next)!.failure, failure);
    // After a retry took failed-revision away, a new release does not carry it.
    const retried = decided(step(obs({ revision: 'new2', templateHash: 'new2', status: after }), failedAt + 60 * SEC));
    assert.equal(written(retried)!.failure, undefined);
  });
});

describe('gates of a new release', () => {
  it("are run for the new revision and its phase, not for the stored status of the release before it (the webhooks' checksum)", () => {
    const o = obs({ revision: 'new2', templateHash: 'new2', config: withHooks([{ name: 'approve', type: 'confirm-rollout' }]), status: status({ phase: 'Succeeded', revision: 'new1' }) });
    assert.deepEqual(step(o, T0 + 60 * SEC), { kind: 'need', need: 'gates', gate: 'confirm-rollout', revision: 'new2', phase: 'Initializing' });
    // Superseding a release mid-analysis: the same.
    const mid = obs({ revision: 'new2', templateHash: 'new2', config: withHooks([{ name: 'approve', type: 'confirm-rollout' }]), status: status({ phase: 'Progressing', revision: 'new1', weight: 25, stepIndex: 0 }) });
    assert.deepEqual(step(mid, T0 + 60 * SEC), { kind: 'need', need: 'gates', gate: 'confirm-rollout', revision: 'new2', phase: 'Initializing' });
  });
});

describe('a confirm gate holding (Waiting) with the canary unready', () => {
  const waiting = (over: object = {}) =>
    obs(
      { config: withHooks([{ name: 'ok', type: 'confirm-traffic-increase' }], { metrics: [{ name: 'request-success-rate', thresholdRange: { min: 99 }, interval: '10s' }] }), status: status({ phase: 'Waiting', waitingOn: 'confirm-traffic-increase', weight: 25, stepIndex: 0, lastCheckAt: iso(T0), ...over }) },
      { canary: readyCanary({ availableReplicas: 0 }), routes: { stable: 75, canary: 25 } },
    );

  it('halts the analysis as Progressing does (no data from an unready canary is no failed check), and says so', () => {
    const r = step(waiting(), T0 + 10 * SEC);
    assert.equal(r.kind, 'decision', 'no gates asked for');
    const d = decided(r);
    assert.equal(written(d)?.phase, 'Waiting');
    assert.equal(written(d)?.failedChecks, 0);
    assert.deepEqual(events(d.actions), ['Halt review.test advancement: waiting for review-canary.test to be ready (0 of 1 updated replicas are available)']);
  });

  it('says the wait again once the canary is ready again (the last Event said Halt)', () => {
    const o = waiting({ canaryUnreadySince: iso(T0), message: 'Halt review.test advancement: waiting for review-canary.test to be ready (0 of 1 updated replicas are available)' });
    const d = decided(step({ ...o, canary: readyCanary(), gates: { analysis: pass, 'confirm-traffic-increase': failing('ok: 403') } }, T0 + 20 * SEC));
    assert.equal(written(d)?.canaryUnreadySince, undefined);
    assert.deepEqual(events(d.actions), ['Waiting for confirm-traffic-increase approval of review.test: ok: 403']);
  });

  it('rolls back once it stays unready past the progress deadline', () => {
    const d = decided(step(waiting({ canaryUnreadySince: iso(T0) }), T0 + 61 * SEC));
    assert.equal(written(d)?.phase, 'RollingBack');
    assert.match(written(d)!.message, /has not been ready for the progress deadline 1m/);
  });
});

describe('a hold that lasts', () => {
  it('is said again every HOLD_REPEAT_MS, so `kubectl describe` still gives the reason after the apiserver dropped the first Event (one hour)', () => {
    const cfg = withHooks([{ name: 'approve', type: 'confirm-promotion' }]);
    const at = (now: number, over: object = {}) =>
      decided(
        step(
          obs({ config: cfg, status: status({ phase: 'Waiting', waitingOn: 'confirm-promotion', weight: 50, stepIndex: 1, lastCheckAt: iso(now - 10 * SEC), lastTransitionAt: iso(T0), message: 'Waiting for confirm-promotion approval of review.test: approve: 403', ...over }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 }, gates: { 'confirm-promotion': failing('approve: 403') } }),
          now,
        ),
      );
    assert.deepEqual(events(at(T0 + 10 * SEC).actions), [], 'said when the wait began');
    const again = at(T0 + HOLD_REPEAT_MS);
    assert.deepEqual(events(again.actions), ['Waiting for confirm-promotion approval of review.test: approve: 403']);
    assert.equal(written(again)?.saidAt, iso(T0 + HOLD_REPEAT_MS));
    assert.deepEqual(events(at(T0 + HOLD_REPEAT_MS + 10 * SEC, { saidAt: iso(T0 + HOLD_REPEAT_MS) }).actions), [], 'and not on every interval after that');
  });
});

describe('confirm-rollout refusing over several intervals', () => {
  it('makes no canary, says the wait once, asks every interval; once approved the canary is made', () => {
    const cfg = withHooks([{ name: 'go', type: 'confirm-rollout' }]);
    const said: string[] = [];
    const asked: number[] = [];
    let s: ReturnType<typeof status> | undefined;
    let t = T0;
    let answer = failing('webhook go answered 503');
    // Each reconcile as the controller drives it: at the requeue time, answering the gate it asks for.
    const reconcile = () => {
      const o = obs({ config: cfg, ...(s ? { status: s } : {}) }, { routes: { stable: 100, canary: 0 } });
      let r = step(o, t);
      if (r.kind === 'need') {
        assert.deepEqual(r, { kind: 'need', need: 'gates', gate: 'confirm-rollout', revision: 'new1', phase: s ? 'Waiting' : 'Initializing' });
        asked.push(t);
        r = step({ ...o, gates: { 'confirm-rollout': answer } }, t);
      }
      const d = decided(r);
      said.push(...events(d.actions));
      s = written(d) ?? s;
      return d;
    };
    for (let i = 0; i < 12; i++) {
      const d = reconcile();
      assert.ok(!d.actions.some((a) => a.type === 'ensureCanary'), `no canary while refused (reconcile ${i}): ${JSON.stringify(d.actions)}`);
      assert.equal(s?.phase, 'Waiting');
      assert.equal(s?.waitingOn, 'confirm-rollout');
      t += i % 2 === 0 ? 4 * SEC : (d.requeueAfterMs ?? 0); // a watch event between checks, then the requeue
    }
    assert.deepEqual(said, ['New revision detected review.test', 'Waiting for confirm-rollout approval of review.test: webhook go answered 503']);
    assert.equal(asked.length, 6, 'once per interval');
    // Still refused half an hour after it was said: said again (the apiserver drops Events after an hour).
    t = T0 + HOLD_REPEAT_MS;
    reconcile();
    assert.equal(said.length, 3);
    answer = pass;
    t += 10 * SEC;
    const d = reconcile();
    assert.equal(s?.phase, 'Initializing');
    assert.ok(d.actions.some((a) => a.type === 'ensureCanary'));
  });
});

describe('promotion of a Deployment with strategy Recreate', () => {
  it('puts all traffic on the canary while the stable pods are recreated, and back on stable once they are up', () => {
    const last = obs({ recreate: true, status: status({ phase: 'Progressing', weight: 50, stepIndex: 1, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 }, gates: { analysis: pass } });
    const p = decided(step(last, T0 + 10 * SEC));
    assert.equal(written(p)?.phase, 'Promoting');
    assert.equal(written(p)?.weight, 100);
    assert.ok(p.actions.some((a) => a.type === 'setWeight' && a.canary === 100), JSON.stringify(p.actions));
    assert.deepEqual(events(p.actions), ['Promoting revision new1 into review.test: all traffic on review-canary.test while review.test is recreated (strategy Recreate)']);
    // Rolled out: Finalising routes everything to the new stable pods.
    const done = decided(step(obs({ recreate: true, paused: false, updatedReplicas: 2, availableReplicas: 2, status: written(p)! }, { canary: readyCanary(), routes: { stable: 0, canary: 100 } }), T0 + 20 * SEC));
    assert.equal(written(done)?.phase, 'Finalising');
    assert.ok(done.actions.some((a) => a.type === 'setWeight' && a.canary === 0));
    // RollingUpdate keeps serving from old and new stable pods: the weights stay as they are.
    const rolling = decided(step({ ...last, stable: { ...last.stable, recreate: undefined } } as never, T0 + 10 * SEC));
    assert.equal(written(rolling)?.weight, 50);
  });
});
