/**
 * step() with a kube-canary.io/request on the stable Deployment: each request in each phase it
 * applies to, the ones it does not apply to (removed with a Warning, never left lying around),
 * and that the removal is part of the same guarded patch that commits the result.
 */
import assert from 'node:assert/strict';
import type { V1Deployment } from '@kubernetes/client-node';
import { buildStablePatch } from '../../src/progressor/stable-patch.js';
import { step } from '../../src/progressor/step.js';
import type { Action } from '../../src/progressor/types.js';
import { SEC, T0, config, iso, obs, pass, readyCanary, status } from './fixtures.js';
import { type Decided, type StepRow, decided, eventActions, runRow, types, written } from './step-table.js';

const events = eventActions;
const messages = (a: Action[]) => events(a).map((e) => e.message);
const cleared = (r: Decided) => r.actions.find((a): a is Extract<Action, { type: 'clearRequest' }> => a.type === 'clearRequest');

/** Metrics configured: a due step would need the analysis gates. */
const METRICS = config({ interval: '10s', threshold: 2, maxWeight: 50, stepWeight: 25 });
const withHooks = (hooks: Array<{ name: string; type: string }>) =>
  config({ interval: '10s', threshold: 2, maxWeight: 50, stepWeight: 25, webhooks: hooks.map((h) => ({ ...h, url: 'http://hooks.test/' })) });

const at25 = { canary: readyCanary(), routes: { stable: 75, canary: 25 } };
const progressing25 = (over = {}) => status({ phase: 'Progressing', weight: 25, stepIndex: 0, lastCheckAt: iso(T0), ...over });
const waitingRollout = () => status({ phase: 'Waiting', waitingOn: 'confirm-rollout', lastCheckAt: iso(T0), message: 'Waiting for confirm-rollout approval of review.test: webhook go answered 503' });
const paused25 = (over = {}) => status({ phase: 'Paused', weight: 25, stepIndex: 0, failedChecks: 1, lastCheckAt: iso(T0), lastTransitionAt: iso(T0), message: 'Release of review.test paused by request at canary weight 25; ...', ...over });

interface Row extends StepRow {
  events?: string[];
  warnings?: RegExp[];
  requeue?: number | 'none';
  /** The request was acted on (true) or ignored (a pattern for the reason). */
  handled?: true | RegExp;
  check?: (r: Decided) => void;
}

const rows: Row[] = [
  // ---- pause -------------------------------------------------------------------------------
  {
    name: 'pause in Progressing when a check is due: Paused at the same weight, no gates, no timer',
    o: obs({ config: METRICS, request: 'pause', status: progressing25() }, at25),
    at: T0 + 10 * SEC,
    phase: 'Paused',
    weight: 25,
    actions: ['clearRequest', 'emitEvent', 'writeStatus'],
    events: ['Release of review.test paused by request at canary weight 25'],
    requeue: 'none',
    handled: true,
    check: (r) => {
      const s = written(r)!;
      assert.match(s.message, /kubectl canary resume review -n test/);
      assert.match(s.message, /kubectl annotate deployment review -n test kube-canary.io\/request=resume/);
      assert.equal(s.lastTransitionAt, iso(T0 + 10 * SEC));
      assert.equal(s.failedChecks, 0);
    },
  },
  {
    name: 'pause in Initializing (canary not ready): Paused at weight 0, the canary not touched',
    o: obs({ request: 'pause', status: status() }, { canary: readyCanary({ availableReplicas: 0 }) }),
    at: T0 + 5 * SEC,
    phase: 'Paused',
    weight: 0,
    absent: ['ensureCanary', 'deleteCanary', 'setWeight'],
    handled: true,
  },
  {
    name: 'pause in Waiting (confirm-promotion): Paused, no longer waiting on the gate',
    o: obs({ config: withHooks([{ name: 'ship', type: 'confirm-promotion' }]), request: 'pause', status: status({ phase: 'Waiting', waitingOn: 'confirm-promotion', weight: 50, stepIndex: 1, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 } }),
    at: T0 + 10 * SEC,
    phase: 'Paused',
    weight: 50,
    handled: true,
    check: (r) => assert.equal(written(r)!.waitingOn, undefined),
  },
  {
    name: 'pause in Waiting (confirm-rollout): Paused at weight 0, no canary made; resumed, the gate is asked again',
    o: obs({ config: withHooks([{ name: 'go', type: 'confirm-rollout' }]), request: 'pause', status: waitingRollout() }),
    at: T0 + 10 * SEC,
    phase: 'Paused',
    weight: 0,
    actions: ['clearRequest', 'emitEvent', 'writeStatus'],
    handled: true,
    check: (r) => {
      const held = written(r)!;
      assert.equal(held.waitingOn, undefined);
      const later = obs({ config: withHooks([{ name: 'go', type: 'confirm-rollout' }]), status: held });
      assert.deepEqual(types(decided(step(later, T0 + 60 * SEC)).actions), [], 'nothing made while paused');
      const resumed = decided(step({ ...later, stable: { ...later.stable, request: 'resume' } }, T0 + 60 * SEC));
      assert.equal(written(resumed)!.phase, 'Initializing');
      assert.ok(!types(resumed.actions).includes('ensureCanary'));
      assert.equal(step({ ...later, stable: { ...later.stable, status: written(resumed)! } }, T0 + 61 * SEC).kind, 'need');
    },
  },
  {
    name: 'a new revision together with pause: the new release starts paused at weight 0',
    o: obs({ request: 'pause' }, { routes: undefined }),
    phase: 'Paused',
    weight: 0,
    actions: ['ensureRoutes', 'setWeight', 'emitEvent', 'clearRequest', 'emitEvent', 'writeStatus'],
    events: ['New revision detected review.test', 'Release of review.test paused by request at canary weight 0'],
    handled: true,
  },
  // ---- held while paused -------------------------------------------------------------------
  {
    name: 'Paused long past the interval and the progress deadline: nothing runs, nothing fires',
    o: obs({ config: METRICS, status: paused25() }, at25),
    at: T0 + 3600 * SEC,
    phase: 'Paused',
    actions: [],
    requeue: 'none',
  },
  {
    name: 'Paused with an unready canary: no halt, no deadline',
    o: obs({ status: paused25() }, { canary: readyCanary({ availableReplicas: 0 }), routes: { stable: 75, canary: 25 } }),
    at: T0 + 3600 * SEC,
    actions: [],
  },
  {
    name: 'Paused, routes drifted: the held weight is re-applied with a Warning, nothing else',
    o: obs({ status: paused25() }, { canary: readyCanary(), routes: { stable: 100, canary: 0 } }),
    at: T0 + 60 * SEC,
    actions: ['setWeight', 'emitEvent'],
    check: (r) => assert.deepEqual(r.actions[0], { type: 'setWeight', canary: 25 }),
  },
  {
    name: 'a new revision while Paused restarts the analysis on it, not paused',
    o: obs({ revision: 'new2', templateHash: 'new2', status: paused25() }, at25),
    at: T0 + 60 * SEC,
    phase: 'Initializing',
    weight: 0,
    check: (r) => {
      assert.equal(written(r)!.revision, 'new2');
      assert.match(messages(r.actions)[0]!, /analysis restarts \(revision new1 superseded by new2\)/);
    },
  },
  // ---- resume ------------------------------------------------------------------------------
  {
    name: 'resume: Progressing at the same weight and failedChecks, next check one interval later',
    o: obs({ config: METRICS, request: 'resume', status: paused25() }, at25),
    at: T0 + 300 * SEC,
    phase: 'Progressing',
    weight: 25,
    actions: ['clearRequest', 'emitEvent', 'writeStatus'],
    events: ['Release of review.test resumed by request at canary weight 25: next check in 10s'],
    requeue: 10 * SEC,
    handled: true,
    check: (r) => {
      const s = written(r)!;
      assert.equal(s.failedChecks, 1);
      assert.equal(s.stepIndex, 0);
      assert.equal(s.lastCheckAt, iso(T0 + 300 * SEC));
      assert.equal(s.lastTransitionAt, iso(T0 + 300 * SEC));
      // One interval later the gates run again, from the kept state.
      const later = { ...obs({ config: METRICS, status: s }, at25) };
      assert.equal(decided(step(later, T0 + 309 * SEC)).requeueAfterMs, 1 * SEC);
      const due = step(later, T0 + 310 * SEC);
      assert.deepEqual(due, { kind: 'need', need: 'gates', gate: 'analysis', revision: 'new1', phase: 'Progressing' });
      const next = decided(step({ ...later, gates: { analysis: pass } }, T0 + 310 * SEC));
      assert.equal(next.status?.weight, 50);
    },
  },
  {
    name: 'resume before the first weight: Initializing again (canary readiness, confirm gates not skipped)',
    o: obs({ request: 'resume', status: status({ phase: 'Paused', rolloutConfirmed: true }) }, { canary: readyCanary({ availableReplicas: 0 }) }),
    at: T0 + 300 * SEC,
    phase: 'Initializing',
    weight: 0,
    requeue: 0,
    handled: true,
    check: (r) => {
      const s = written(r)!;
      assert.equal(s.lastTransitionAt, iso(T0 + 300 * SEC), 'the progress deadline counts from the resume');
      assert.equal(s.rolloutConfirmed, true);
    },
  },
  // ---- promote -----------------------------------------------------------------------------
  {
    name: 'promote mid-analysis: Promoting at once, stable unpaused in the same write, no gates',
    o: obs({ config: METRICS, request: 'promote', status: progressing25() }, at25),
    at: T0 + 10 * SEC,
    phase: 'Promoting',
    weight: 25,
    actions: ['clearRequest', 'emitEvent', 'unpauseStable', 'emitEvent', 'writeStatus'],
    events: ['Promotion of review.test requested: skipping the remaining analysis', 'Promoting revision new1 into review.test'],
    handled: true,
  },
  {
    name: 'promote while Waiting on confirm-promotion: the gate is skipped',
    o: obs({ config: withHooks([{ name: 'ship', type: 'confirm-promotion' }]), request: 'promote', status: status({ phase: 'Waiting', waitingOn: 'confirm-promotion', weight: 50, stepIndex: 1, lastCheckAt: iso(T0) }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 } }),
    at: T0 + 10 * SEC,
    phase: 'Promoting',
    handled: true,
    check: (r) => assert.equal(written(r)!.waitingOn, undefined),
  },
  {
    name: 'promote while confirm-rollout has not answered: Promoting, the gate is not asked',
    o: obs({ config: withHooks([{ name: 'go', type: 'confirm-rollout' }]), request: 'promote', status: status() }, { routes: { stable: 100, canary: 0 } }),
    phase: 'Promoting',
    weight: 0,
    handled: true,
  },
  {
    name: 'promote while Waiting on confirm-rollout: Promoting, the gate is not asked, no canary made',
    o: obs({ config: withHooks([{ name: 'go', type: 'confirm-rollout' }]), request: 'promote', status: waitingRollout() }),
    at: T0 + 3 * SEC,
    phase: 'Promoting',
    weight: 0,
    absent: ['ensureCanary'],
    handled: true,
  },
  {
    name: 'promote while Paused: Promoting',
    o: obs({ request: 'promote', status: paused25() }, at25),
    at: T0 + 60 * SEC,
    phase: 'Promoting',
    weight: 25,
    absent: ['setWeight'],
    handled: true,
  },
  // ---- abort -------------------------------------------------------------------------------
  {
    name: 'abort mid-analysis: RollingBack "aborted by request", traffic to stable first',
    o: obs({ config: METRICS, request: 'abort', status: progressing25() }, at25),
    at: T0 + 3 * SEC,
    phase: 'RollingBack',
    weight: 0,
    actions: ['setWeight', 'clearRequest', 'emitEvent', 'writeStatus'],
    requeue: 0,
    handled: true,
    check: (r) => {
      assert.deepEqual(r.actions[0], { type: 'setWeight', canary: 0 });
      assert.equal(written(r)!.message, 'Rolling back review.test: aborted by request');
      const [ev] = events(r.actions);
      assert.equal(ev!.warning, true);
      assert.equal(ev!.message, 'Release of review.test aborted by request at canary weight 25: rolling back');
      // ... and then like any rollback: stable template restored, failed revision recorded.
      const done = decided(step(obs({ config: METRICS, status: written(r)! }, { canary: readyCanary(), routes: { stable: 100, canary: 0 }, stableTemplateFound: true }), T0 + 4 * SEC));
      assert.equal(done.status?.phase, 'Failed');
      assert.equal(done.status?.message, 'Rolling back review.test: aborted by request');
      assert.deepEqual(done.actions.find((a) => a.type === 'clearRelease'), { type: 'clearRelease', failedRevision: 'new1' });
      assert.ok(types(done.actions).includes('restoreStableTemplate'));
    },
  },
  {
    name: 'abort while Paused: RollingBack',
    o: obs({ request: 'abort', status: paused25() }, at25),
    phase: 'RollingBack',
    weight: 0,
    handled: true,
  },
  {
    name: 'abort while Waiting on confirm-rollout: RollingBack, no canary made',
    o: obs({ config: withHooks([{ name: 'go', type: 'confirm-rollout' }]), request: 'abort', status: waitingRollout() }),
    at: T0 + 3 * SEC,
    phase: 'RollingBack',
    weight: 0,
    absent: ['ensureCanary'],
    handled: true,
  },
  {
    name: 'abort while Initializing: RollingBack',
    o: obs({ request: 'abort', status: status() }, { canary: readyCanary({ availableReplicas: 0 }) }),
    phase: 'RollingBack',
    handled: true,
  },
  {
    // kube-canary.io/service names no Service: every reconcile of this release failed on making
    // its routes, so nothing was committed; the abort must not need them either.
    name: 'abort of a release held before it had any routes (its Service missing): RollingBack without making routes',
    o: obs({ request: 'abort' }, { routes: undefined }),
    phase: 'RollingBack',
    weight: 0,
    absent: ['ensureRoutes', 'setWeight'],
    handled: true,
    check: (r) => assert.ok(!messages(r.actions).some((m) => /routes .* were missing/.test(m)), messages(r.actions).join('\n')),
  },
  {
    name: 'abort at weight 25 with the routes deleted: RollingBack, no routes made only to be set to 0, no RoutesRecreated',
    o: obs({ request: 'abort', status: progressing25() }, { canary: readyCanary(), routes: undefined }),
    phase: 'RollingBack',
    weight: 0,
    absent: ['ensureRoutes', 'setWeight'],
    handled: true,
    check: (r) => assert.ok(!messages(r.actions).some((m) => /were missing/.test(m)), messages(r.actions).join('\n')),
  },
  {
    name: 'abort while Promoting: RollingBack (the stable template will be restored)',
    o: obs({ paused: false, updatedReplicas: 1, request: 'abort', status: status({ phase: 'Promoting', weight: 50, stepIndex: 1 }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 } }),
    at: T0 + 5 * SEC,
    phase: 'RollingBack',
    weight: 0,
    handled: true,
  },
  // ---- requests that do not apply ----------------------------------------------------------
  {
    name: 'promote while Promoting: ignored with a Warning, the promotion goes on',
    o: obs({ paused: false, generation: 3, observedGeneration: 3, statusReplicas: 3, updatedReplicas: 1, availableReplicas: 2, request: 'promote', status: status({ phase: 'Promoting', weight: 50, stepIndex: 1, message: 'Waiting for review.test rollout to finish: 1 of 2 new replicas have been updated' }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 } }),
    at: T0 + 5 * SEC,
    phase: 'Promoting',
    actions: ['clearRequest', 'emitEvent'],
    warnings: [/^Request "promote" on review\.test ignored: revision new1 is already being promoted into review\.test/],
    requeue: 55 * SEC,
    handled: /already being promoted/,
  },
  {
    name: 'pause while Promoting: ignored',
    o: obs({ paused: false, updatedReplicas: 1, request: 'pause', status: status({ phase: 'Promoting', weight: 50, stepIndex: 1 }) }, { canary: readyCanary(), routes: { stable: 50, canary: 50 } }),
    at: T0 + 5 * SEC,
    phase: 'Promoting',
    handled: /already being promoted/,
  },
  {
    name: 'abort while Finalising: ignored, the promotion completes',
    o: obs({ paused: false, updatedReplicas: 2, availableReplicas: 2, request: 'abort', status: status({ phase: 'Finalising', weight: 0, stepIndex: 1 }) }, { canary: readyCanary() }),
    phase: 'Succeeded',
    handled: /promotion of revision new1 into review\.test is completing/,
  },
  {
    name: 'promote while RollingBack: the rollback needs the stable template first (request kept until decided)',
    o: obs({ request: 'promote', status: status({ phase: 'RollingBack', message: 'Rolling back review.test: x' }) }, { canary: readyCanary() }),
    need: 'stableTemplate',
  },
  {
    name: 'promote while RollingBack: ignored in the commit that ends the rollback',
    o: obs({ request: 'promote', status: status({ phase: 'RollingBack', message: 'Rolling back review.test: x' }) }, { canary: readyCanary(), stableTemplateFound: true }),
    phase: 'Failed',
    handled: /already rolling back/,
  },
  {
    name: 'resume when not paused: ignored, the due check still runs',
    o: obs({ config: METRICS, request: 'resume', status: progressing25() }, { ...at25, gates: { analysis: pass } }),
    at: T0 + 10 * SEC,
    phase: 'Progressing',
    weight: 50,
    warnings: [/^Request "resume" on review\.test ignored: the release of review\.test is not paused \(phase Progressing\)$/],
    handled: /not paused/,
  },
  {
    name: 'resume when not paused asks for the gates like any due step',
    o: obs({ config: METRICS, request: 'resume', status: progressing25() }, at25),
    at: T0 + 10 * SEC,
    need: 'analysis',
  },
  {
    name: 'pause while Paused: ignored, still held',
    o: obs({ request: 'pause', status: paused25() }, at25),
    phase: 'Paused',
    actions: ['clearRequest', 'emitEvent'],
    handled: /already paused/,
  },
  {
    name: 'retry during a release: ignored',
    o: obs({ request: 'retry', failedRevision: 'bad9', status: progressing25() }, at25),
    at: T0 + SEC,
    actions: ['clearRequest', 'emitEvent'],
    handled: /retry applies to a failed revision once no release is in progress/,
  },
  {
    name: 'an unknown value that got past the webhook: ignored, naming the allowed ones',
    o: obs({ request: 'rollback', status: progressing25() }, at25),
    at: T0 + SEC,
    phase: 'Progressing',
    actions: ['clearRequest', 'emitEvent'],
    warnings: [/^Request "rollback" on review\.test ignored: "rollback" is not a request; allowed: promote, abort, pause, resume, retry$/],
    handled: /not a request/,
  },
  {
    name: 'a request on a release with invalid configuration: ignored, the hold stays',
    o: obs({ request: 'promote', config: { ok: false, errors: ['kube-canary.io/analysis: x'] } }, { routes: undefined }),
    phase: 'Initializing',
    absent: ['unpauseStable', 'setWeight'],
    handled: /configuration is invalid/,
  },
  {
    name: 'a request on a cancelled release (template reverted): ignored, the cancel goes on',
    o: obs({ revision: 'old0', templateHash: 'old0', request: 'abort', status: progressing25() }, at25),
    phase: 'Succeeded',
    absent: ['restoreStableTemplate'],
    handled: /release is cancelled/,
  },
  // ---- outside a release -------------------------------------------------------------------
  {
    name: 'retry after a rollback: failed-revision removed, no status change',
    o: obs({ revision: undefined, stableRevision: undefined, paused: false, failedRevision: 'bad9', request: 'retry', status: status({ phase: 'Failed', revision: 'bad9' }) }),
    actions: ['clearRequest', 'clearFailedRevision', 'emitEvent'],
    events: ['Revision bad9 of review.test may be shipped again'],
    handled: true,
  },
  {
    name: 'retry with nothing failed: ignored',
    o: obs({ revision: undefined, stableRevision: undefined, paused: false, request: 'retry', status: status({ phase: 'Succeeded' }) }),
    actions: ['clearRequest', 'emitEvent'],
    warnings: [/^Request "retry" on review\.test ignored: no failed revision of review\.test is recorded/],
    handled: /nothing to retry/,
  },
  ...(['promote', 'abort', 'pause', 'resume'] as const).map(
    (req): Row => ({
      name: `${req} with no release in progress: ignored`,
      o: obs({ revision: undefined, stableRevision: undefined, paused: false, failedRevision: 'bad9', request: req }, { routes: undefined }),
      actions: ['clearRequest', 'emitEvent'],
      warnings: [new RegExp(`^Request "${req}" on review\\.test ignored: no release of review\\.test is in progress$`)],
      handled: /no release/,
    }),
  ),
  {
    name: 'an unknown value with no release in progress: ignored',
    o: obs({ revision: undefined, stableRevision: undefined, paused: false, request: 'Pause' }, { routes: undefined }),
    actions: ['clearRequest', 'emitEvent'],
    handled: /"Pause" is not a request/,
  },
];

describe('progressor step() with kube-canary.io/request', () => {
  for (const row of rows) {
    it(row.name, () => {
      const d = runRow(row);
      if (!d) return;
      if (row.events) assert.deepEqual(events(d.actions).filter((e) => !e.warning).map((e) => e.message), row.events);
      if (row.warnings) {
        const w = events(d.actions).filter((e) => e.warning).map((e) => e.message);
        assert.equal(w.length, row.warnings.length, w.join('\n'));
        row.warnings.forEach((p, i) => assert.match(w[i]!, p));
      }
      if (row.requeue === 'none') assert.equal(d.requeueAfterMs, undefined);
      else if (row.requeue !== undefined) assert.equal(d.requeueAfterMs, row.requeue);
      if (row.o.stable.request !== undefined) {
        // Whatever the request, it is removed exactly once, in this decision.
        assert.equal(d.actions.filter((a) => a.type === 'clearRequest').length, 1, 'the request is removed');
        const c = cleared(d)!;
        assert.equal(c.request, row.o.stable.request);
        if (row.handled === true) assert.equal(c.ignored, undefined, `acted on, not ignored: ${c.ignored}`);
        else if (row.handled) {
          assert.match(c.ignored ?? '', row.handled);
          const warn = events(d.actions).filter((e) => e.warning && e.reason === 'RequestIgnored');
          assert.equal(warn.length, 1, 'one Warning says why it was ignored');
          assert.ok(warn[0]!.message.includes(c.ignored!));
        }
      } else {
        assert.ok(!types(d.actions).includes('clearRequest'));
      }
      row.check?.(d);
    });
  }
});

describe('the request removal is part of the commit', () => {
  const REQ = '/metadata/annotations/kube-canary.io~1request';
  const STATUS = '/metadata/annotations/kube-canary.io~1status';
  const stableObj = (ann: Record<string, string>): V1Deployment => ({ metadata: { name: 'review', namespace: 'test', uid: 'u-1', generation: 7, resourceVersion: '42', annotations: ann } });
  const GUARD = ['test /metadata/uid', 'test /metadata/generation'];

  it('pause: one patch guarded by the uid and generation removes the request and writes the Paused status', () => {
    const d = decided(step(obs({ config: METRICS, request: 'pause', status: progressing25() }, at25), T0 + 10 * SEC));
    const ops = buildStablePatch(stableObj({ 'kube-canary.io/request': 'pause', 'kube-canary.io/status': '{}' }), d.actions);
    assert.deepEqual(ops.slice(0, 2), [
      { op: 'test', path: '/metadata/uid', value: 'u-1' },
      { op: 'test', path: '/metadata/generation', value: 7 },
    ]);
    assert.deepEqual(ops.map((o) => `${o.op} ${o.path}`), [...GUARD, `remove ${REQ}`, `add ${STATUS}`]);
    assert.equal(JSON.parse((ops[3] as { value: string }).value).phase, 'Paused');
  });

  it('promote: the unpause, the request removal and the Promoting status in one patch', () => {
    const d = decided(step(obs({ config: METRICS, request: 'promote', status: progressing25() }, at25), T0 + 10 * SEC));
    const ops = buildStablePatch(stableObj({ 'kube-canary.io/request': 'promote' }), d.actions);
    assert.deepEqual(ops.map((o) => `${o.op} ${o.path}`), [...GUARD, `remove ${REQ}`, 'add /spec/paused', `add ${STATUS}`]);
  });

  it('retry: the request and the failed revision go in one patch; an ignored request alone still makes a guarded patch', () => {
    const retry = decided(step(obs({ revision: undefined, stableRevision: undefined, paused: false, failedRevision: 'bad9', request: 'retry' }, { routes: undefined }), T0));
    assert.deepEqual(
      buildStablePatch(stableObj({ 'kube-canary.io/request': 'retry', 'kube-canary.io/failed-revision': 'bad9' }), retry.actions).map((o) => `${o.op} ${o.path}`),
      [...GUARD, `remove ${REQ}`, 'remove /metadata/annotations/kube-canary.io~1failed-revision'],
    );
    const ignored = decided(step(obs({ revision: undefined, stableRevision: undefined, paused: false, request: 'promote' }, { routes: undefined }), T0));
    assert.deepEqual(buildStablePatch(stableObj({ 'kube-canary.io/request': 'promote' }), ignored.actions).map((o) => `${o.op} ${o.path}`), [...GUARD, `remove ${REQ}`]);
  });
});
