import assert from 'node:assert/strict';
import { templateHash } from '../../src/config/template-hash.js';
import { decide } from '../../src/webhook/decision.js';
import { config, loadReview, patchedObject, setImage, type Review } from './fixtures.js';

const IMG = 'docker.io/istio/examples-bookinfo-reviews-v1';
const hashOf = (r: Review, which: 'object' | 'oldObject') => templateHash(r.request[which]!.spec!.template, 'version');

/** A release of 1.8.0 captured on top of 1.7.0: the oldObject of the next update during that release. */
function midRelease(): Review {
  const r = loadReview('review-set-image');
  const captured = patchedObject(r, decide(r.request, 'label', config));
  const next = loadReview('review-set-image');
  next.request.oldObject = captured;
  next.request.object = structuredClone(captured);
  return next;
}

describe('webhook decision', () => {
  describe('a new revision (kubectl set image review:1.7.0 -> 1.8.0)', () => {
    const r = loadReview('review-set-image');
    const d = decide(r.request, 'label', config);
    const stored = patchedObject(r, d);

    it('keeps the new template, pauses, and stamps both revisions', () => {
      assert.equal(d.outcome, 'patched');
      assert.equal(d.response.allowed, true);
      assert.equal(d.response.uid, r.request.uid);
      assert.equal(d.response.patchType, 'JSONPatch');
      assert.equal(stored.spec!.paused, true);
      assert.equal(stored.spec!.template.spec!.containers[0]!.image, `${IMG}:1.8.0`);
      assert.equal(stored.metadata!.annotations!['kube-canary.io/revision'], hashOf(r, 'object'));
      assert.equal(stored.metadata!.annotations!['kube-canary.io/stable-revision'], hashOf(r, 'oldObject'));
      assert.notEqual(hashOf(r, 'object'), hashOf(r, 'oldObject'));
      assert.equal(stored.spec!.template.metadata!.labels!.version, 'stable');
    });

    it('changes nothing else', () => {
      const paths = d.patch.map((op) => op.path).sort();
      assert.deepEqual(paths, ['/metadata/annotations/kube-canary.io~1revision', '/metadata/annotations/kube-canary.io~1stable-revision', '/spec/paused']);
    });

    it('warns with the canary name, the planned steps and how to watch', () => {
      const text = d.response.warnings!.join('\n');
      assert.match(text, new RegExp(`captured revision ${hashOf(r, 'object')} of review as a canary release`));
      assert.match(text, /review-canary gets the new template; steps 25%, 50% every 1m; roll back after 5 failed checks/);
      assert.match(text, /follow it with "kubectl describe deployment review -n test" or the plugin's "kubectl canary watch"/);
      for (const w of d.response.warnings!) assert.ok(w.length <= 256, `warning longer than the apiserver shows: ${w}`);
    });

    it('gives a dry run exactly the same answer', () => {
      const dry = loadReview('review-set-image');
      dry.request.dryRun = true;
      assert.deepEqual(decide(dry.request, 'label', config).response, d.response);
    });

    it('says so when skip-analysis is set', () => {
      const s = loadReview('review-set-image');
      s.request.object.metadata!.annotations!['kube-canary.io/skip-analysis'] = 'true';
      assert.match(decide(s.request, 'label', config).response.warnings!.join('\n'), /promoted as soon as review-canary is ready/);
    });
  });

  describe('updates that do not change the template', () => {
    it('lets a replicas-only change through untouched (kubectl scale through the main resource)', () => {
      const r = loadReview('review-set-image');
      r.request.object = structuredClone(r.request.oldObject!);
      r.request.object.spec!.replicas = 5;
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'allowed');
      assert.equal(d.response.patch, undefined);
      assert.equal(d.response.warnings, undefined);
    });

    it('lets the scale subresource through', () => {
      const r = loadReview('review-set-image');
      r.request.subResource = 'scale';
      r.request.kind = { group: 'autoscaling', version: 'v1', kind: 'Scale' };
      assert.equal(decide(r.request, 'label', config).outcome, 'allowed');
    });

    it('lets label and annotation changes through untouched', () => {
      const r = loadReview('review-set-image');
      r.request.object = structuredClone(r.request.oldObject!);
      r.request.object.metadata!.labels!.team = 'books';
      r.request.object.metadata!.annotations!['owner'] = 'alice';
      assert.equal(decide(r.request, 'label', config).outcome, 'allowed');
    });

    it('treats kubectl rollout restart as a restart, not a release', () => {
      const r = loadReview('review-set-image');
      r.request.object = structuredClone(r.request.oldObject!);
      r.request.object.spec!.template.metadata!.annotations = { 'kubectl.kubernetes.io/restartedAt': '2026-11-26T10:00:00Z' };
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'allowed');
      assert.equal(patchedObject(r, d).spec!.paused, undefined);
    });

    it('puts the track label back when an apply drops it', () => {
      const r = loadReview('review-set-image');
      r.request.object = structuredClone(r.request.oldObject!);
      delete r.request.object.spec!.template.metadata!.labels!.version;
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'patched');
      const stored = patchedObject(r, d);
      assert.equal(stored.spec!.template.metadata!.labels!.version, 'stable');
      assert.equal(stored.spec!.paused, undefined);
    });
  });

  describe('CREATE and opt-in', () => {
    it('adds the stable track label on CREATE and nothing else', () => {
      const r = loadReview('review-create');
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'patched');
      assert.deepEqual(d.patch, [{ op: 'add', path: '/spec/template/metadata/labels/version', value: 'stable' }]);
      assert.equal(patchedObject(r, d).spec!.paused, undefined);
    });

    it('replaces a different value of the track key on CREATE, with a warning', () => {
      const r = loadReview('review-create');
      r.request.object.spec!.template.metadata!.labels!.version = 'v1';
      const d = decide(r.request, 'label', config);
      assert.equal(patchedObject(r, d).spec!.template.metadata!.labels!.version, 'stable');
      assert.match(d.response.warnings!.join(), /version=v1 replaced by version=stable/);
    });

    it('unpauses a new Deployment copied from one kube-canary had paused, and keeps a pause the user asked for', () => {
      const copy = loadReview('review-create');
      copy.request.object.spec!.paused = true;
      copy.request.object.metadata!.annotations = { 'kube-canary.io/revision': 'ab6b5b04dc', 'kube-canary.io/stable-revision': 'a6826ed37b' };
      const d = decide(copy.request, 'label', config);
      assert.equal(patchedObject(copy, d).spec!.paused, false);
      assert.match(d.response.warnings!.join('\n'), /unpaused the new Deployment test\/review, paused for the release of ab6b5b04dc: that revision now rolls out without its analysis having finished/);
      const own = loadReview('review-create');
      own.request.object.spec!.paused = true;
      assert.equal(patchedObject(own, decide(own.request, 'label', config)).spec!.paused, true);
      // The status of a finished release stays on a Deployment: next to it, a pause is the user's own.
      own.request.object.metadata!.annotations = { 'kube-canary.io/status': JSON.stringify({ phase: 'Succeeded', revision: 'ab6b5b04dc' }) };
      assert.equal(patchedObject(own, decide(own.request, 'label', config)).spec!.paused, true);
    });

    it('says that opting in restarts the pods once, when the running template lacks the track label', () => {
      const r = loadReview('review-set-image');
      r.request.object = structuredClone(r.request.oldObject!);
      delete r.request.oldObject!.metadata!.labels!['kube-canary.io/enabled'];
      delete r.request.oldObject!.spec!.template.metadata!.labels!.version;
      delete r.request.object.spec!.template.metadata!.labels!.version;
      const d = decide(r.request, 'label', config);
      assert.equal(patchedObject(r, d).spec!.template.metadata!.labels!.version, 'stable');
      assert.match(d.response.warnings!.join('\n'), /is opted in and its running pods do not carry version=stable: the pod template gets it, so its pods are replaced once/);
    });

    it('removes release annotations copied into a new Deployment', () => {
      const r = loadReview('review-create');
      r.request.object.metadata!.annotations!['kube-canary.io/revision'] = 'abc';
      const d = decide(r.request, 'label', config);
      assert.equal(patchedObject(r, d).metadata!.annotations!['kube-canary.io/revision'], undefined);
      assert.match(d.response.warnings!.join(), /removed revision \(kube-canary.io\/\) from the new Deployment review/);
      // A failed revision is another object's record too (its status, which says when and why, goes as well).
      const copy = loadReview('review-create');
      copy.request.object.metadata!.annotations!['kube-canary.io/failed-revision'] = '4851af4edc';
      copy.request.object.metadata!.annotations!['kube-canary.io/status'] = '{"phase":"Failed","revision":"4851af4edc"}';
      const c = decide(copy.request, 'label', config);
      const stored = patchedObject(copy, c).metadata!.annotations!;
      assert.equal(stored['kube-canary.io/failed-revision'], undefined);
      assert.equal(stored['kube-canary.io/status'], undefined);
      assert.ok(c.response.warnings!.includes('kube-canary: removed status, failed-revision (kube-canary.io/) from the new Deployment review: they describe a release of another object'), c.response.warnings!.join('\n'));
    });

    it('only adds the track label on the UPDATE that opts a Deployment in, even with a new image', () => {
      const r = loadReview('review-set-image');
      delete r.request.oldObject!.metadata!.labels!['kube-canary.io/enabled'];
      delete r.request.oldObject!.spec!.template.metadata!.labels!.version;
      delete r.request.object.spec!.template.metadata!.labels!.version;
      const d = decide(r.request, 'label', config);
      const stored = patchedObject(r, d);
      assert.equal(stored.spec!.paused, undefined);
      assert.equal(stored.spec!.template.metadata!.labels!.version, 'stable');
      assert.equal(stored.metadata!.annotations!['kube-canary.io/revision'], undefined);
      assert.match(d.response.warnings!.join(), /not a canary/);
    });

    it('does not capture when the running pods lack the track label (namespace opt-in), so stable traffic never goes nowhere', () => {
      const r = loadReview('review-set-image');
      delete r.request.object.metadata!.labels!['kube-canary.io/enabled'];
      delete r.request.oldObject!.metadata!.labels!['kube-canary.io/enabled'];
      delete r.request.oldObject!.spec!.template.metadata!.labels!.version;
      const stored = patchedObject(r, decide(r.request, 'namespace', config));
      assert.equal(stored.spec!.paused, undefined);
      assert.equal(stored.spec!.template.metadata!.labels!.version, 'stable');
    });

    it('denies a selector expression on the track label key, and reads a forged one without failing', () => {
      const r = loadReview('review-create');
      r.request.object.spec!.selector.matchExpressions = [{ key: 'version', operator: 'In', values: ['v1'] }];
      assert.match(decide(r.request, 'label', config).response.status!.message, /spec.selector uses the track label key "version"/);
      for (const forged of ['x', [null]]) {
        (r.request.object.spec!.selector as { matchExpressions: unknown }).matchExpressions = forged;
        assert.equal(decide(r.request, 'label', config).outcome, 'patched');
      }
    });

    it('takes a selector expression that selects stable pods only, as it takes version: stable in matchLabels', () => {
      const accepted = [
        { key: 'version', operator: 'In', values: ['stable'] },
        { key: 'version', operator: 'NotIn', values: ['canary'] },
      ];
      const denied = [
        { key: 'version', operator: 'Exists' },
        { key: 'version', operator: 'In', values: ['stable', 'canary'] },
        { key: 'version', operator: 'NotIn', values: ['v1'] },
        { key: 'version', operator: 'In', values: [] },
      ];
      for (const [exprs, outcome] of [...accepted.map((e) => [e, 'patched'] as const), ...denied.map((e) => [e, 'denied'] as const)]) {
        const r = loadReview('review-create');
        r.request.object.spec!.selector.matchExpressions = [exprs];
        assert.equal(decide(r.request, 'label', config).outcome, outcome, JSON.stringify(exprs));
      }
    });

    it('denies a selector that uses the track label key with another value', () => {
      const r = loadReview('review-create');
      r.request.object.spec!.selector.matchLabels!.version = 'v1';
      r.request.object.spec!.template.metadata!.labels!.version = 'v1';
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'denied');
      assert.match(d.response.status!.message, /spec.selector uses the track label key "version" \(version=v1\).*--track-label/);
    });

    it('says the selector cannot be changed when the update that opts an existing Deployment in is refused for it', () => {
      const r = loadReview('review-set-image');
      r.request.object = structuredClone(r.request.oldObject!);
      delete r.request.oldObject!.metadata!.labels!['kube-canary.io/enabled'];
      for (const o of [r.request.object, r.request.oldObject!]) o.spec!.selector.matchLabels!.version = 'v1';
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'denied');
      assert.match(d.response.status!.message, /--track-label; a selector cannot be changed, so recreate the Deployment without the track label key in spec.selector, or opt the Deployment out/);
    });

    it('uses the configured track label key', () => {
      const r = loadReview('review-set-image');
      const d = decide(r.request, 'label', { ...config, trackLabel: 'track' });
      // The old template has no `track` label yet: this update opts the pods in, no capture.
      assert.equal(patchedObject(r, d).spec!.template.metadata!.labels!.track, 'stable');
      assert.equal(patchedObject(r, d).spec!.paused, undefined);
    });
  });

  describe('a Deployment that has not rolled out yet (no deployment.kubernetes.io/revision on the stored object)', () => {
    /** The fixture's update, from a stored object the Deployment controller never rolled out. */
    function neverRolledOut(paused: boolean): Review {
      const r = loadReview('review-set-image');
      for (const o of [r.request.oldObject!, r.request.object]) {
        delete o.metadata!.annotations!['deployment.kubernetes.io/revision'];
        if (paused) o.spec!.paused = true;
      }
      return r;
    }

    it('lets a new template of one created paused through as its first rollout: track label, no canary, the pause stays the user\'s', () => {
      const r = neverRolledOut(true);
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'allowed'); // the template already carries version=stable: nothing to patch
      const after = patchedObject(r, d);
      assert.equal(after.spec!.paused, true);
      assert.equal(after.spec!.template.metadata!.labels!.version, 'stable');
      assert.equal(after.metadata!.annotations!['kube-canary.io/revision'], undefined);
      assert.equal(after.metadata!.annotations!['kube-canary.io/stable-revision'], undefined);
      assert.deepEqual(d.response.warnings, [
        'kube-canary: test/review has not rolled out yet (it has been paused since it was created), so this template change is not a canary: no pods run the template before it. The first template change after it has rolled out will be',
      ]);
    });

    it('does the same for an update that reaches it before the Deployment controller does, and still ensures the track label', () => {
      const r = neverRolledOut(false);
      delete r.request.object.spec!.template.metadata!.labels!.version;
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'patched');
      const after = patchedObject(r, d);
      assert.equal(after.spec!.paused, undefined);
      assert.equal(after.spec!.template.metadata!.labels!.version, 'stable');
      assert.equal(after.metadata!.annotations!['kube-canary.io/revision'], undefined);
      assert.match(d.response.warnings!.join('\n'), /test\/review has not rolled out yet \(the Deployment controller has not acted on it yet\), so this template change is not a canary/);
    });

    it('still refuses a revision that failed, and still captures once the controller has stamped its first revision', () => {
      const failed = neverRolledOut(true);
      failed.request.oldObject!.metadata!.annotations!['kube-canary.io/failed-revision'] = hashOf(failed, 'object');
      assert.equal(decide(failed.request, 'label', config).outcome, 'denied');
      const rolled = neverRolledOut(true);
      rolled.request.oldObject!.metadata!.annotations!['deployment.kubernetes.io/revision'] = '1';
      const after = patchedObject(rolled, decide(rolled.request, 'label', config));
      assert.equal(after.metadata!.annotations!['kube-canary.io/revision'], hashOf(rolled, 'object'));
    });

    it('keeps a release already under way on such a Deployment (captured before kube-canary looked for a first rollout): a new template replaces it', () => {
      const r = midRelease();
      delete r.request.oldObject!.metadata!.annotations!['deployment.kubernetes.io/revision'];
      delete r.request.object.metadata!.annotations!['deployment.kubernetes.io/revision'];
      setImage(r.request.object, `${IMG}:1.9.0`);
      const d = decide(r.request, 'label', config);
      const after = patchedObject(r, d);
      assert.equal(after.metadata!.annotations!['kube-canary.io/revision'], hashOf(r, 'object'));
      assert.equal(after.spec!.paused, true);
      assert.match(d.response.warnings!.join('\n'), /replacing/);
    });
  });

  describe('scope and identity', () => {
    const cases: Array<[string, (r: Review) => void, 'label' | 'namespace']> = [
      ['a Deployment not labelled true on /mutate', (r) => delete r.request.object.metadata!.labels!['kube-canary.io/enabled'], 'label'],
      ['a Deployment labelled "false" on /mutate/namespace', (r) => (r.request.object.metadata!.labels!['kube-canary.io/enabled'] = 'false'), 'namespace'],
      ['a Deployment labelled "false" on /mutate', (r) => (r.request.object.metadata!.labels!['kube-canary.io/enabled'] = 'false'), 'label'],
      ['a canary Deployment', (r) => (r.request.object.metadata!.labels!['kube-canary.io/role'] = 'canary'), 'namespace'],
      ['a Deployment in kube-system', (r) => (r.request.namespace = 'kube-system'), 'label'],
      ['a Deployment in kube-public', (r) => (r.request.namespace = 'kube-public'), 'namespace'],
      ['a Deployment in kube-node-lease', (r) => (r.request.namespace = 'kube-node-lease'), 'label'],
      ["a Deployment in kube-canary's own namespace", (r) => (r.request.namespace = 'kube-canary'), 'label'],
      ['a write by the progressor', (r) => (r.request.userInfo = { username: 'system:serviceaccount:kube-canary:kube-canary-progressor' }), 'label'],
      ['a DELETE', (r) => (r.request.operation = 'DELETE'), 'label'],
    ];
    for (const [name, mutate, source] of cases) {
      it(`lets ${name} through untouched`, () => {
        const r = loadReview('review-set-image');
        mutate(r);
        const d = decide(r.request, source, config);
        assert.equal(d.outcome, 'allowed', d.reason);
        assert.equal(d.response.patch, undefined);
      });
    }

    it('acts on a Deployment without the label on /mutate/namespace', () => {
      const r = loadReview('review-set-image');
      delete r.request.object.metadata!.labels!['kube-canary.io/enabled'];
      delete r.request.oldObject!.metadata!.labels!['kube-canary.io/enabled'];
      const stored = patchedObject(r, decide(r.request, 'namespace', config));
      assert.equal(stored.spec!.paused, true);
    });

    it('does not trust a progressor identity written into the object', () => {
      const r = loadReview('review-set-image');
      r.request.object.metadata!.annotations!['kube-canary.io/progressor'] = 'system:serviceaccount:kube-canary:kube-canary-progressor';
      r.request.object.metadata!.labels!['app.kubernetes.io/managed-by'] = 'kube-canary-progressor';
      assert.equal(decide(r.request, 'label', config).outcome, 'denied'); // unknown kube-canary.io/ annotation
      delete r.request.object.metadata!.annotations!['kube-canary.io/progressor'];
      assert.equal(patchedObject(r, decide(r.request, 'label', config)).spec!.paused, true);
    });
  });

  describe('during a release', () => {
    it('denies an unpause (kubectl rollout resume) and points at promote and abort', () => {
      const r = midRelease();
      r.request.object.spec!.paused = false;
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'denied');
      assert.equal(d.response.status!.code, 403);
      assert.match(d.response.status!.message, /kubectl canary promote review -n test/);
      assert.match(d.response.status!.message, /kubectl canary abort review -n test/);
      // The same update comes from a manifest or chart that says paused: false (helm upgrade, a GitOps sync).
      assert.match(d.response.status!.message, /A manifest or chart that sets spec.paused: false does this on every apply: leave the field out/);
    });

    it('says a cancelled release is being wound up, not that the stable revision is "in progress", when an unpause is refused after a revert', () => {
      const r = midRelease();
      const stable = r.request.oldObject!.metadata!.annotations!['kube-canary.io/stable-revision']!;
      for (const o of [r.request.oldObject!, r.request.object]) {
        o.metadata!.annotations!['kube-canary.io/revision'] = stable;
        setImage(o, `${IMG}:1.7.0`);
      }
      r.request.object.spec!.paused = false;
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'denied');
      assert.match(d.response.status!.message, /is paused by kube-canary while the cancelled canary release is wound up \(traffic back to stable, canary removed\)/);
    });

    it('denies removing the opt-in label, which would strand the paused Deployment', () => {
      for (const change of [(l: Record<string, string>) => delete l['kube-canary.io/enabled'], (l: Record<string, string>) => (l['kube-canary.io/enabled'] = 'false')]) {
        const r = midRelease();
        change(r.request.object.metadata!.labels!);
        const d = decide(r.request, 'label', config);
        assert.equal(d.outcome, 'denied');
        assert.match(d.response.status!.message, /canary release of revision \w+ in progress; opting it out now would leave it paused/);
      }
    });

    /** midRelease() with the progressor's status: the canary at `weight`. */
    const withTraffic = (weight: number, service?: string): Review => {
      const r = midRelease();
      for (const o of [r.request.oldObject!, r.request.object]) {
        const a = o.metadata!.annotations!;
        a['kube-canary.io/status'] = JSON.stringify({ phase: weight > 0 ? 'Progressing' : 'Initializing', revision: a['kube-canary.io/revision'], stableRevision: a['kube-canary.io/stable-revision'], weight, stepIndex: weight > 0 ? 0 : -1, failedChecks: 0, startedAt: '2026-11-27T00:00:00Z', lastTransitionAt: '2026-11-27T00:00:00Z', message: '' });
        if (service !== undefined) a['kube-canary.io/service'] = service;
      }
      return r;
    };

    it('denies moving the release to another Service once the canary has traffic: the old routes would keep its share for good', () => {
      const cases: Array<[string | undefined, (a: Record<string, string>) => void, string, string]> = [
        [undefined, (a) => (a['kube-canary.io/service'] = 'review-b'), 'review', 'review-b'],
        ['review-a', (a) => (a['kube-canary.io/service'] = 'review-b'), 'review-a', 'review-b'],
        // a rewrite of the whole object that leaves the annotation out (kubectl replace)
        ['review-a', (a) => delete a['kube-canary.io/service'], 'review-a', 'review'],
      ];
      for (const [before, change, from, to] of cases) {
        const r = withTraffic(25, before);
        change(r.request.object.metadata!.annotations!);
        const d = decide(r.request, 'label', config);
        assert.equal(d.outcome, 'denied', `${from} -> ${to}`);
        assert.equal(d.response.status!.code, 403);
        const msg = d.response.status!.message;
        assert.match(msg, new RegExp(`release of revision \\w+ in progress that sends 25% of Service ${from}'s traffic to review-canary; changing the routed Service to ${to} now would leave ${from}'s routes sending that share to the canary`));
        assert.match(msg, /kubectl annotate deployment review -n test kube-canary.io\/request=promote, or =abort\), then change kube-canary.io\/service$/);
      }
    });

    it('denies it also together with a new template (the analysis restarts, the old routes would still keep the share)', () => {
      const r = withTraffic(10);
      r.request.object.metadata!.annotations!['kube-canary.io/service'] = 'review-b';
      setImage(r.request.object, `${IMG}:1.9.0`);
      assert.equal(decide(r.request, 'label', config).outcome, 'denied');
    });

    it('lets the routed Service change before the canary has traffic (how a release held by a missing Service is put right), and with no release in progress', () => {
      for (const r of [withTraffic(0, 'reviw'), midRelease()]) {
        r.request.object.metadata!.annotations!['kube-canary.io/service'] = 'review';
        assert.notEqual(decide(r.request, 'label', config).outcome, 'denied');
      }
      const idle = loadReview('review-set-image');
      idle.request.object = structuredClone(idle.request.oldObject!);
      idle.request.object.metadata!.annotations = { ...idle.request.object.metadata!.annotations, 'kube-canary.io/service': 'review-b' };
      assert.notEqual(decide(idle.request, 'label', config).outcome, 'denied');
    });

    it('lets other updates of a release with traffic through with its Service as it is', () => {
      const r = withTraffic(25, 'review-a');
      r.request.object.spec!.replicas = 4;
      assert.notEqual(decide(r.request, 'label', config).outcome, 'denied');
    });

    it('lets the opt-in label go once no release is in progress', () => {
      const r = loadReview('review-set-image');
      r.request.object = structuredClone(r.request.oldObject!);
      delete r.request.object.metadata!.labels!['kube-canary.io/enabled'];
      assert.equal(decide(r.request, 'label', config).outcome, 'allowed');
    });

    it('lets the progressor unpause', () => {
      const r = midRelease();
      delete r.request.object.spec!.paused;
      r.request.userInfo = { username: 'system:serviceaccount:kube-canary:kube-canary-progressor' };
      assert.equal(decide(r.request, 'label', config).outcome, 'allowed');
    });

    it('keeps every warning of a capture within 256 characters (what the apiserver cuts each to when there are many), with name and namespace at their longest', () => {
      const r = midRelease();
      for (const o of [r.request.object, r.request.oldObject!]) {
        o.metadata!.name = 'n'.repeat(63);
        o.metadata!.namespace = 's'.repeat(63);
        o.metadata!.annotations!['kube-canary.io/service'] = 'reviews';
      }
      r.request.name = 'n'.repeat(63);
      r.request.namespace = 's'.repeat(63);
      setImage(r.request.object, `${IMG}:1.9.0`);
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'patched');
      assert.match(d.response.warnings!.join('\n'), /replacing \w+ \(analysis restarts\)/);
      for (const w of d.response.warnings!) assert.ok(w.length <= 256, `${w.length}: ${w}`);
    });

    it('restarts on the newest template and keeps the stable revision', () => {
      const first = loadReview('review-set-image');
      const r = midRelease();
      setImage(r.request.object, `${IMG}:1.9.0`);
      const d = decide(r.request, 'label', config);
      const stored = patchedObject(r, d);
      assert.equal(stored.spec!.paused, true);
      assert.equal(stored.metadata!.annotations!['kube-canary.io/revision'], templateHash(stored.spec!.template, 'version'));
      assert.equal(stored.metadata!.annotations!['kube-canary.io/stable-revision'], hashOf(first, 'oldObject'));
      assert.match(d.response.warnings!.join(), new RegExp(`replacing ${hashOf(first, 'object')} \\(analysis restarts\\)`));
    });

    it('cancels when the template goes back to the running revision', () => {
      const first = loadReview('review-set-image');
      const r = midRelease();
      setImage(r.request.object, `${IMG}:1.7.0`);
      const d = decide(r.request, 'label', config);
      const stored = patchedObject(r, d);
      assert.equal(stored.metadata!.annotations!['kube-canary.io/revision'], hashOf(first, 'oldObject'));
      assert.match(d.response.warnings!.join(), /cancelled/);
    });

    it('keeps the release annotations when a kubectl replace drops them', () => {
      const r = midRelease();
      const ann = r.request.object.metadata!.annotations!;
      delete ann['kube-canary.io/revision'];
      delete ann['kube-canary.io/stable-revision'];
      const stored = patchedObject(r, decide(r.request, 'label', config));
      assert.deepEqual(stored.metadata!.annotations, r.request.oldObject!.metadata!.annotations);
    });

    it('takes a rewrite from a manifest exported after an earlier release (status kept, no revision) as a rewrite too', () => {
      const r = midRelease();
      delete r.request.object.spec!.paused;
      for (const a of ['kube-canary.io/revision', 'kube-canary.io/stable-revision']) delete r.request.object.metadata!.annotations![a];
      r.request.object.metadata!.annotations!['kube-canary.io/status'] = JSON.stringify({ phase: 'Succeeded', revision: 'a6826ed37b' });
      const stored = patchedObject(r, decide(r.request, 'label', config));
      assert.equal(stored.spec!.paused, true);
    });

    it('takes a rewrite of the whole object (kubectl replace, helm --force) that drops paused and the release annotations as a rewrite, not an unpause', () => {
      const r = midRelease();
      delete r.request.object.spec!.paused;
      for (const a of ['kube-canary.io/revision', 'kube-canary.io/stable-revision', 'kube-canary.io/status']) delete r.request.object.metadata!.annotations![a];
      const d = decide(r.request, 'label', config);
      assert.equal(d.response.allowed, true);
      const stored = patchedObject(r, d);
      assert.equal(stored.spec!.paused, true);
      assert.deepEqual(stored.metadata!.annotations, r.request.oldObject!.metadata!.annotations);
    });

    it('captures a new template shipped by such a rewrite (paused dropped), restarting the analysis', () => {
      const first = loadReview('review-set-image');
      const r = midRelease();
      delete r.request.object.spec!.paused;
      for (const a of ['kube-canary.io/revision', 'kube-canary.io/stable-revision']) delete r.request.object.metadata!.annotations![a];
      setImage(r.request.object, `${IMG}:1.9.0`);
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'patched');
      const stored = patchedObject(r, d);
      assert.equal(stored.spec!.paused, true);
      assert.equal(stored.metadata!.annotations!['kube-canary.io/stable-revision'], hashOf(first, 'oldObject'));
      assert.equal(stored.metadata!.annotations!['kube-canary.io/revision'], templateHash(stored.spec!.template, 'version'));
    });

    /** midRelease() as the progressor leaves it in `phase` (unpaused), with the controller's status `rolled` or not. */
    function inPhase(phase: string, rolled: boolean): { r: Review; promoted: string; stable: string } {
      const r = midRelease();
      const ann = r.request.oldObject!.metadata!.annotations!;
      const promoted = ann['kube-canary.io/revision']!;
      for (const o of [r.request.object, r.request.oldObject!]) {
        delete o.spec!.paused;
        o.metadata!.annotations!['kube-canary.io/status'] = JSON.stringify({ phase, revision: promoted, weight: 50 });
        o.metadata!.generation = 7;
        o.status = { observedGeneration: rolled ? 7 : 6, updatedReplicas: rolled ? 1 : 0, replicas: 3 };
      }
      return { r, promoted, stable: ann['kube-canary.io/stable-revision']! };
    }

    it('releases a new template shipped during a promotion against the revision being promoted', () => {
      const { r, promoted } = inPhase('Promoting', true);
      setImage(r.request.object, `${IMG}:1.9.0`);
      const d = decide(r.request, 'label', config);
      const stored = patchedObject(r, d);
      assert.equal(stored.spec!.paused, true);
      assert.equal(stored.metadata!.annotations!['kube-canary.io/stable-revision'], promoted);
      const text = d.response.warnings!.join('\n');
      assert.match(text, new RegExp(`the promotion of ${promoted} stops where it is .*; ${promoted} is the stable revision now`));
      assert.doesNotMatch(text, /replacing/);
      const fin = inPhase('Finalising', true).r;
      setImage(fin.request.object, `${IMG}:1.9.0`);
      assert.equal(patchedObject(fin, decide(fin.request, 'label', config)).metadata!.annotations!['kube-canary.io/stable-revision'], promoted);
    });

    it('keeps the stored stable revision when no promotion has really started: a rollback under way, or a controller that has not rolled anything yet', () => {
      for (const [phase, rolled] of [['RollingBack', true], ['Promoting', false], ['Progressing', true]] as const) {
        const { r, stable } = inPhase(phase, rolled);
        setImage(r.request.object, `${IMG}:1.9.0`);
        const d = decide(r.request, 'label', config);
        assert.equal(patchedObject(r, d).metadata!.annotations!['kube-canary.io/stable-revision'], stable, `${phase}, rolled ${rolled}`);
        assert.doesNotMatch(d.response.warnings!.join('\n'), /stops where it is/);
      }
    });

    it('cancels a promotion when the template goes back to the old revision (the quick way out of a bad one)', () => {
      const { r, stable } = inPhase('Promoting', true);
      setImage(r.request.object, `${IMG}:1.7.0`);
      const d = decide(r.request, 'label', config);
      const stored = patchedObject(r, d);
      assert.equal(stored.metadata!.annotations!['kube-canary.io/revision'], stable);
      assert.equal(stored.metadata!.annotations!['kube-canary.io/stable-revision'], stable);
      assert.match(d.response.warnings!.join('\n'), /cancelled and traffic returns to stable/);
    });

    it('does not say a release is replaced when the one before was just cancelled', () => {
      const r = midRelease();
      const stable = r.request.oldObject!.metadata!.annotations!['kube-canary.io/stable-revision']!;
      r.request.oldObject!.metadata!.annotations!['kube-canary.io/revision'] = stable; // reverted, not yet finished by the progressor
      setImage(r.request.oldObject!, `${IMG}:1.7.0`);
      setImage(r.request.object, `${IMG}:1.9.0`);
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'patched');
      assert.doesNotMatch(d.response.warnings!.join('\n'), /replacing/);
    });

    it('undoes a hand-made change of a release annotation, with a warning', () => {
      const r = midRelease();
      r.request.object.metadata!.annotations!['kube-canary.io/stable-revision'] = 'deadbeef00';
      const d = decide(r.request, 'label', config);
      const stored = patchedObject(r, d);
      assert.deepEqual(stored.metadata!.annotations, r.request.oldObject!.metadata!.annotations);
      assert.match(d.response.warnings!.join('\n'), /kube-canary.io\/stable-revision of test\/review is kube-canary's own and was left as before; steer a release with kube-canary.io\/request/);
    });
  });

  describe('release annotations written by hand on a Deployment at rest', () => {
    it('removes a hand-written revision and status, with a warning, so no release is invented', () => {
      const r = loadReview('review-set-image');
      r.request.object = structuredClone(r.request.oldObject!);
      r.request.object.metadata!.annotations!['kube-canary.io/revision'] = 'deadbeef00';
      r.request.object.metadata!.annotations!['kube-canary.io/status'] = '{"phase":"Progressing"}';
      const d = decide(r.request, 'label', config);
      const stored = patchedObject(r, d);
      assert.equal(stored.metadata!.annotations!['kube-canary.io/revision'], undefined);
      assert.equal(stored.metadata!.annotations!['kube-canary.io/status'], undefined);
      assert.equal(stored.spec!.paused, r.request.oldObject!.spec!.paused);
      assert.match(d.response.warnings!.join('\n'), /kube-canary.io\/revision, kube-canary.io\/status of test\/review are kube-canary's own and were left as before/);
    });
  });

  describe('a revision that failed analysis', () => {
    function failed(): Review {
      const r = loadReview('review-set-image');
      const ann = r.request.oldObject!.metadata!.annotations!;
      ann['kube-canary.io/failed-revision'] = hashOf(r, 'object');
      ann['kube-canary.io/status'] = JSON.stringify({
        phase: 'Failed', revision: hashOf(r, 'object'), stableRevision: hashOf(r, 'oldObject'), weight: 0, stepIndex: -1, failedChecks: 5,
        startedAt: '2026-11-26T09:00:00Z', lastTransitionAt: '2026-11-26T09:06:00Z', message: 'request-success-rate 70.1 < 99 (5 of 5 failed checks)',
      });
      for (const k of Object.keys(ann)) if (k === 'kube-canary.io/failed-revision' || k === 'kube-canary.io/status') r.request.object.metadata!.annotations![k] = ann[k]!;
      return r;
    }

    it('is remembered when a rewrite of the whole object ships another template without it', () => {
      const r = failed();
      delete r.request.object.metadata!.annotations!['kube-canary.io/failed-revision'];
      setImage(r.request.object, `${IMG}:1.9.0`);
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'patched');
      const stored = patchedObject(r, d);
      assert.equal(stored.metadata!.annotations!['kube-canary.io/failed-revision'], r.request.oldObject!.metadata!.annotations!['kube-canary.io/failed-revision']);
      assert.equal(stored.metadata!.annotations!['kube-canary.io/revision'], hashOf(r, 'object'));
    });

    it('can still be taken off by hand when the template does not change', () => {
      const r = failed();
      r.request.object = structuredClone(r.request.oldObject!);
      delete r.request.object.metadata!.annotations!['kube-canary.io/failed-revision'];
      const d = decide(r.request, 'label', config);
      assert.equal(patchedObject(r, d).metadata!.annotations!['kube-canary.io/failed-revision'], undefined);
      // A rewrite of the whole object drops it the same way, so the answer says what that means.
      assert.match(d.response.warnings!.join('\n'), /kube-canary.io\/failed-revision \w+ is removed from test\/review, so that revision can be shipped again without a retry/);
    });

    it('is denied with when, why and how to retry', () => {
      const d = decide(failed().request, 'label', config);
      assert.equal(d.outcome, 'denied');
      const m = d.response.status!.message;
      assert.match(m, /failed its canary analysis at 2026-11-26T09:06:00Z: request-success-rate 70.1 < 99/);
      assert.match(m, /kubectl canary retry review -n test/);
    });

    it('still says when and why after later releases of other revisions (the status is about the last one; it keeps the failure\'s record)', () => {
      const r = failed();
      const later = {
        phase: 'Succeeded', revision: 'abcdef0123', stableRevision: hashOf(r, 'oldObject'), weight: 0, stepIndex: 1, failedChecks: 0,
        startedAt: '2026-11-26T10:00:00Z', lastTransitionAt: '2026-11-26T10:05:00Z', message: 'Promotion completed! Scaling down review-canary.test',
        failure: { revision: hashOf(r, 'object'), at: '2026-11-26T09:06:00Z', message: 'request-success-rate 70.1 < 99 (5 of 5 failed checks)' },
      };
      r.request.oldObject!.metadata!.annotations!['kube-canary.io/status'] = JSON.stringify(later);
      r.request.object.metadata!.annotations!['kube-canary.io/status'] = JSON.stringify(later);
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'denied');
      assert.match(d.response.status!.message, /failed its canary analysis at 2026-11-26T09:06:00Z: request-success-rate 70.1 < 99/);
    });

    it('does not block a different revision', () => {
      const r = failed();
      setImage(r.request.object, `${IMG}:1.8.1`);
      assert.equal(decide(r.request, 'label', config).outcome, 'patched');
    });
  });

  describe('invalid configuration', () => {
    it('keeps every warning within 256 characters, also the let-through notes of a stored Flagger field (the apiserver cuts them there)', () => {
      for (const analysis of ['iterations: 10\nmatch: [{headers: {x: {exact: "1"}}}]', 'canaryReadyThreshold: 50', 'metrics: [{name: e, query: \'x{d="{{ variables.direction }}"}\', thresholdRange: {max: 1}}]']) {
        const r = loadReview('review-set-image');
        for (const o of [r.request.oldObject!, r.request.object]) o.metadata!.annotations!['kube-canary.io/analysis'] = analysis;
        r.request.object.spec!.template = structuredClone(r.request.oldObject!.spec!.template); // replicas only: let through
        r.request.object.spec!.replicas = 5;
        const d = decide(r.request, 'label', config);
        assert.notEqual(d.outcome, 'denied', analysis);
        assert.ok(d.response.warnings!.length > 1);
        for (const w of d.response.warnings!) assert.ok(w.length <= 256, `${w.length}: ${w}`);
      }
    });

    it('lists ten problems at most, however long the list that has them (a denial is logged and shown whole)', () => {
      const r = loadReview('review-set-image');
      r.request.object.metadata!.annotations!['kube-canary.io/analysis'] = `stepWeights: [${Array.from({ length: 900 }, (_, i) => i + 1).join(',')}]`;
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'denied');
      const m = d.response.status!.message;
      assert.ok(m.length < 2000, `${m.length} characters`);
      assert.match(m, /analysis.stepWeights\[100\] 101 is too large.*; and 790 more problems \(fix these first\)$/);
    });

    const bad: Array<[string, string, Record<string, string>]> = [
      ['the article example maxWeight 25 with stepWeight 50', 'stepWeight 50 is larger than analysis.maxWeight 25', { 'kube-canary.io/analysis': 'maxWeight: 25\nstepWeight: 50' }],
      ['YAML that does not parse', 'not valid YAML or JSON', { 'kube-canary.io/analysis': 'interval: [1m' }],
      ['a bad progress deadline', 'kube-canary.io/progress-deadline: "soon" is not a duration', { 'kube-canary.io/progress-deadline': 'soon' }],
      ['an unknown provider', 'kube-canary.io/provider: "linkerd" is not a traffic provider; allowed: istio (gateway-api, replicas are planned', { 'kube-canary.io/provider': 'linkerd' }],
      ['a misspelt annotation', 'annotation kube-canary.io/analyis is not a kube-canary annotation', { 'kube-canary.io/analyis': 'x' }],
    ];
    for (const [name, expected, ann] of bad) {
      it(`denies ${name}, naming field, value and what is allowed`, () => {
        const r = loadReview('review-set-image');
        Object.assign(r.request.object.metadata!.annotations!, ann);
        const d = decide(r.request, 'label', config);
        assert.equal(d.outcome, 'denied');
        assert.equal(d.response.status!.code, 400);
        assert.ok(d.response.status!.message.includes(expected), d.response.status!.message);
        assert.match(d.response.status!.message, /^kube-canary configuration of Deployment test\/review is invalid/);
      });
    }
  });

  describe('a problem stored on the Deployment before this update (webhook away, another kube-canary version, namespace opted in later)', () => {
    const STORED_BAD = { 'kube-canary.io/analysis': 'maxWeight: 25\nstepWeight: 50' };
    /** An update of an opted-in Deployment whose old and new object both carry `ann`; the template is unchanged. */
    function storedBad(ann: Record<string, string> = STORED_BAD): Review {
      const r = loadReview('review-set-image');
      r.request.object = structuredClone(r.request.oldObject!);
      Object.assign(r.request.object.metadata!.annotations!, ann);
      Object.assign(r.request.oldObject!.metadata!.annotations!, ann);
      return r;
    }

    const untouched: Array<[string, (r: Review) => void]> = [
      ['kubectl scale', (r) => (r.request.object.spec!.replicas = 7)],
      ['a label change', (r) => (r.request.object.metadata!.labels!.team = 'b')],
      ['an added finalizer', (r) => (r.request.object.metadata!.finalizers = ['example.com/hold'])],
    ];
    for (const [name, change] of untouched) {
      it(`lets ${name} through untouched, warning about the stored problem`, () => {
        const r = storedBad();
        change(r);
        const d = decide(r.request, 'label', config);
        assert.equal(d.outcome, 'allowed');
        assert.equal(d.response.patch, undefined);
        assert.match(d.response.warnings!.join('\n'), /let through, but a new pod template will be refused until this is fixed:\nkube-canary: kube-canary.io\/analysis: analysis.stepWeight 50 is larger than analysis.maxWeight 25/);
        for (const w of d.response.warnings!) assert.ok(w.length <= 256, `warning longer than the apiserver keeps: ${w}`);
      });
    }

    it('says the pods restart when an update it lets through adds the track label (Namespace opted in later)', () => {
      const r = storedBad();
      for (const o of [r.request.object, r.request.oldObject!]) {
        delete o.metadata!.labels!['kube-canary.io/enabled'];
        delete o.spec!.template.metadata!.labels!.version;
      }
      r.request.object.metadata!.labels!.team = 'x';
      const d = decide(r.request, 'namespace', config);
      assert.equal(d.response.allowed, true);
      assert.equal(patchedObject(r, d).spec!.template.metadata!.labels!.version, 'stable');
      assert.match(d.response.warnings!.join('\n'), /its pods are replaced once \(the same version, restarted\)/);
      assert.match(d.response.warnings!.join('\n'), /a new pod template will be refused until this is fixed/);
    });

    it('lets an annotation unknown to this version (written under a newer one) not block a scale', () => {
      const r = storedBad({ 'kube-canary.io/canary-weight': '10' });
      r.request.object.spec!.replicas = 7;
      const d = decide(r.request, 'namespace', config);
      assert.equal(d.outcome, 'allowed');
      assert.match(d.response.warnings!.join('\n'), /kube-canary.io\/canary-weight is not a kube-canary annotation/);
    });

    it('refuses a new template until the configuration is fixed, saying how', () => {
      const r = storedBad();
      setImage(r.request.object, `${IMG}:1.8.0`);
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'denied');
      assert.match(d.response.status!.message, /stepWeight 50 is larger than analysis.maxWeight 25.*\. This update ships a new pod template.*fix it in the same update, or opt the Deployment out \(label kube-canary.io\/enabled=false\)/);
    });

    it('still keeps what every update keeps: the release annotations mid-release and the track label', () => {
      const r = midRelease();
      for (const o of [r.request.object, r.request.oldObject!]) o.metadata!.annotations!['kube-canary.io/analysis'] = 'maxWeight: 25\nstepWeight: 50';
      // kubectl replace of a manifest without the release annotations and without the track label
      for (const a of ['kube-canary.io/revision', 'kube-canary.io/stable-revision']) delete r.request.object.metadata!.annotations![a];
      delete r.request.object.spec!.template.metadata!.labels!.version;
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'patched');
      const stored = patchedObject(r, d);
      assert.equal(stored.metadata!.annotations!['kube-canary.io/revision'], r.request.oldObject!.metadata!.annotations!['kube-canary.io/revision']);
      assert.equal(stored.metadata!.annotations!['kube-canary.io/stable-revision'], r.request.oldObject!.metadata!.annotations!['kube-canary.io/stable-revision']);
      assert.equal(stored.spec!.template.metadata!.labels!.version, 'stable');
    });

    it('lets a request through (the progressor answers it) and still refuses a bad request value', () => {
      const r = midRelease();
      for (const o of [r.request.object, r.request.oldObject!]) o.metadata!.annotations!['kube-canary.io/analysis'] = 'maxWeight: 25\nstepWeight: 50';
      for (const value of ['abort', 'promote']) {
        r.request.object.metadata!.annotations!['kube-canary.io/request'] = value;
        assert.equal(decide(r.request, 'label', config).response.allowed, true, value);
      }
      r.request.object.metadata!.annotations!['kube-canary.io/request'] = 'abortt';
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'denied');
      assert.match(d.response.status!.message, /kube-canary.io\/request: "abortt" is not a request/);
      // Mid-release the way out is the fix alone: opting out is refused then.
      delete r.request.object.metadata!.annotations!['kube-canary.io/request'];
      setImage(r.request.object, `${IMG}:1.9.0`);
      assert.match(decide(r.request, 'label', config).response.status!.message, /fix it in the same update; the release in progress is on hold until it is fixed \(kubectl describe deployment review -n test\)$/);
    });

    it('captures a new template shipped together with the fix', () => {
      const r = storedBad();
      setImage(r.request.object, `${IMG}:1.8.0`);
      r.request.object.metadata!.annotations!['kube-canary.io/analysis'] = 'maxWeight: 50\nstepWeight: 25';
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'patched');
      assert.equal(patchedObject(r, d).spec!.paused, true);
    });

    it('still denies an update that writes the bad value, and the update that opts a Deployment with it in', () => {
      const changed = storedBad({ 'kube-canary.io/analysis': 'maxWeight: 30\nstepWeight: 50' });
      changed.request.object.metadata!.annotations!['kube-canary.io/analysis'] = 'maxWeight: 25\nstepWeight: 50';
      assert.equal(decide(changed.request, 'label', config).outcome, 'denied');
      const optIn = storedBad();
      delete optIn.request.oldObject!.metadata!.labels!['kube-canary.io/enabled'];
      assert.equal(decide(optIn.request, 'label', config).outcome, 'denied');
    });

    it('lets a selector on the track label key (namespace opted in later) scale, and refuses its new templates with the way out', () => {
      const r = loadReview('review-set-image');
      for (const o of [r.request.object, r.request.oldObject!]) {
        delete o.metadata!.labels!['kube-canary.io/enabled'];
        o.spec!.selector.matchLabels!.version = 'v1';
        o.spec!.template.metadata!.labels!.version = 'v1';
      }
      const scale = structuredClone(r);
      scale.request.object = structuredClone(scale.request.oldObject!);
      scale.request.object.spec!.replicas = 9;
      const s = decide(scale.request, 'namespace', config);
      assert.equal(s.outcome, 'allowed');
      assert.equal(s.response.patch, undefined, 'the template labels must stay as the selector needs them');
      assert.match(s.response.warnings!.join('\n'), /spec.selector uses the track label key "version"/);
      const d = decide(r.request, 'namespace', config);
      assert.equal(d.outcome, 'denied');
      assert.match(d.response.status!.message, /a selector cannot be changed, so recreate the Deployment without the track label key in spec.selector, or opt the Deployment out \(label kube-canary.io\/enabled=false\)/);
    });
  });

  describe('the opt-in label with a value other than "true" or "false"', () => {
    for (const value of ['False', 'no', 'off', 'True', '']) {
      it(`denies ${JSON.stringify(value)} when an update writes it in an opted-in Namespace, saying which values work`, () => {
        const r = loadReview('review-set-image');
        r.request.object = structuredClone(r.request.oldObject!);
        r.request.object.metadata!.labels!['kube-canary.io/enabled'] = value;
        const d = decide(r.request, 'namespace', config);
        assert.equal(d.outcome, 'denied');
        assert.match(d.response.status!.message, new RegExp(`label kube-canary.io/enabled=${JSON.stringify(value)} is neither "true" nor "false"; set it to "false" to opt the Deployment out`));
      });
    }

    it('lets updates of a Deployment that already had it pass with a warning, and refuses its new templates', () => {
      const r = loadReview('review-set-image');
      for (const o of [r.request.object, r.request.oldObject!]) o.metadata!.labels!['kube-canary.io/enabled'] = 'no';
      const scale = structuredClone(r);
      scale.request.object = structuredClone(scale.request.oldObject!);
      scale.request.object.spec!.replicas = 2;
      const s = decide(scale.request, 'namespace', config);
      assert.equal(s.response.allowed, true);
      assert.match(s.response.warnings!.join('\n'), /is neither "true" nor "false"/);
      assert.equal(decide(r.request, 'namespace', config).outcome, 'denied');
    });

    it('on /mutate (the label entry), denies a new value that is neither, instead of reading it as "not opted in"', () => {
      const typo = loadReview('review-set-image');
      typo.request.object = structuredClone(typo.request.oldObject!);
      typo.request.object.metadata!.labels!['kube-canary.io/enabled'] = 'True';
      const d = decide(typo.request, 'label', config);
      assert.equal(d.outcome, 'denied');
      assert.match(d.response.status!.message, /^Deployment test\/review: label kube-canary.io\/enabled="True" is neither "true" nor "false"/);
      const created = loadReview('review-create');
      created.request.object.metadata!.labels!['kube-canary.io/enabled'] = 'yes';
      assert.equal(decide(created.request, 'label', config).outcome, 'denied');
      // Stored before (the label entry never acts on it): let through untouched, and said.
      const stored = loadReview('review-set-image');
      for (const o of [stored.request.object, stored.request.oldObject!]) o.metadata!.labels!['kube-canary.io/enabled'] = 'True';
      const s = decide(stored.request, 'label', config);
      assert.equal(s.outcome, 'allowed');
      assert.equal(s.response.patch, undefined);
      assert.deepEqual(s.response.warnings, ['kube-canary: test/review is not opted in: label kube-canary.io/enabled="True" is neither "true" nor "false"; set it to "false" to opt the Deployment out, or to "true" (or leave it out, in an opted-in Namespace) to opt it in']);
      // Never managed anyway: a canary Deployment, a system namespace.
      const canary = structuredClone(typo);
      canary.request.object.metadata!.labels!['kube-canary.io/role'] = 'canary';
      assert.equal(decide(canary.request, 'label', config).outcome, 'allowed');
    });
  });

  describe('names a release cannot use', () => {
    it('lets a Deployment created with generateName in an opted-in Namespace through (named after admission), track label ensured', () => {
      const r = loadReview('review-create');
      delete r.request.object.metadata!.name;
      r.request.object.metadata!.generateName = 'worker-';
      r.request.name = '';
      delete r.request.object.metadata!.labels!['kube-canary.io/enabled'];
      const d = decide(r.request, 'namespace', config);
      assert.equal(d.response.allowed, true, d.reason);
      assert.equal(patchedObject(r, d).spec!.template.metadata!.labels!.version, 'stable');
      assert.equal(d.response.warnings, undefined);
    });

    it('creates a Deployment whose name is not a Service name (api.v2) with a warning, and refuses its new templates until kube-canary.io/service is set', () => {
      const c = loadReview('review-create');
      c.request.object.metadata!.name = c.request.name = 'api.v2';
      const created = decide(c.request, 'label', config);
      assert.equal(created.response.allowed, true);
      assert.match(created.response.warnings!.join('\n'), /kube-canary: the name "api.v2" is not a Service name \(a-z, 0-9 and '-', starting with a letter\), so kube-canary cannot take the Service from it: set kube-canary.io\/service/);
      for (const w of created.response.warnings!) assert.ok(w.length <= 256, w);
      const r = loadReview('review-set-image');
      for (const o of [r.request.object, r.request.oldObject!]) o.metadata!.name = 'api.v2';
      r.request.name = 'api.v2';
      const update = decide(r.request, 'label', config);
      assert.equal(update.outcome, 'denied');
      assert.match(update.response.status!.message, /^Deployment test\/api.v2: the name "api.v2" is not a Service name.*This update ships a new pod template, which kube-canary cannot release until that is fixed: fix it in the same update, or opt the Deployment out/);
      r.request.object.metadata!.annotations!['kube-canary.io/service'] = 'api';
      assert.equal(decide(r.request, 'label', config).outcome, 'patched');
    });

    it('refuses taking kube-canary.io/service off a Deployment whose name is not a Service name (configuration, not its name)', () => {
      const r = loadReview('review-set-image');
      for (const o of [r.request.object, r.request.oldObject!]) {
        o.metadata!.name = 'api.v2';
        o.metadata!.annotations!['kube-canary.io/service'] = 'api';
      }
      r.request.name = 'api.v2';
      r.request.object = structuredClone(r.request.oldObject!);
      delete r.request.object.metadata!.annotations!['kube-canary.io/service'];
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'denied');
      assert.match(d.response.status!.message, /^kube-canary configuration of Deployment test\/api.v2 is invalid: the name "api.v2" is not a Service name/);
    });

    it('refuses the new templates of a Deployment named longer than a label value (63), saying it must be recreated', () => {
      const long = 'a'.repeat(64);
      const r = loadReview('review-set-image');
      for (const o of [r.request.object, r.request.oldObject!]) {
        o.metadata!.name = long;
        o.metadata!.annotations!['kube-canary.io/service'] = 'reviews';
      }
      r.request.name = long;
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'denied');
      assert.match(d.response.status!.message, /the Deployment's name is 64 characters long; kube-canary labels its canary with it \(kube-canary.io\/stable\), and a label value has at most 63 characters.*a name cannot be changed, so recreate the Deployment under a name of at most 63 characters/);
      const scale = structuredClone(r);
      scale.request.object = structuredClone(scale.request.oldObject!);
      scale.request.object.spec!.replicas = 5;
      assert.equal(decide(scale.request, 'label', config).response.allowed, true);
    });
  });

  describe('a Deployment being deleted', () => {
    it('lets the garbage collector take its finalizer off, even with a stored bad configuration', () => {
      const r = loadReview('review-set-image');
      r.request.object = structuredClone(r.request.oldObject!);
      for (const o of [r.request.object, r.request.oldObject!]) {
        o.metadata!.deletionTimestamp = '2026-11-26T20:00:00Z' as unknown as Date;
        o.metadata!.annotations!['kube-canary.io/analysis'] = 'maxWeight: 25\nstepWeight: 50';
      }
      r.request.oldObject!.metadata!.finalizers = ['foregroundDeletion'];
      r.request.userInfo = { username: 'system:serviceaccount:kube-system:generic-garbage-collector' };
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'allowed');
      assert.equal(d.response.patch, undefined);
    });

    it('does not capture or pause a new template written while it is being deleted', () => {
      const r = loadReview('review-set-image');
      for (const o of [r.request.object, r.request.oldObject!]) o.metadata!.deletionTimestamp = '2026-11-26T20:00:00Z' as unknown as Date;
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'allowed');
      assert.equal(d.response.patch, undefined);
    });

    it("judges by the stored object: a deletionTimestamp sent with a CREATE or a PUT is the client's, and dropped by the apiserver", () => {
      const create = loadReview('review-create');
      create.request.object.metadata!.deletionTimestamp = '2026-11-26T20:00:00Z' as unknown as Date;
      create.request.object.metadata!.annotations = { 'kube-canary.io/analysis': 'maxWeight: 25\nstepWeight: 50' };
      assert.equal(decide(create.request, 'label', config).outcome, 'denied');
      const put = loadReview('review-set-image');
      put.request.object.metadata!.deletionTimestamp = '2026-11-26T20:00:00Z' as unknown as Date;
      assert.equal(patchedObject(put, decide(put.request, 'label', config)).spec!.paused, true);
    });
  });

  describe('kube-canary.io/request (kubectl annotate, later the kubectl plugin)', () => {
    const REQUESTS = ['promote', 'abort', 'pause', 'resume', 'retry'];

    for (const value of REQUESTS) {
      it(`lets request=${value} through untouched during a release: no capture, no pause change`, () => {
        const r = midRelease();
        r.request.object.metadata!.annotations!['kube-canary.io/request'] = value;
        const d = decide(r.request, 'label', config);
        assert.equal(d.outcome, 'allowed', d.reason);
        assert.deepEqual(d.patch, []);
        assert.equal(d.response.patch, undefined);
        assert.equal(d.response.warnings, undefined);
      });
    }

    it('lets request=retry through on a Deployment at rest with a failed revision', () => {
      const r = loadReview('review-set-image');
      r.request.oldObject!.metadata!.annotations!['kube-canary.io/failed-revision'] = hashOf(r, 'object');
      r.request.object = structuredClone(r.request.oldObject!);
      r.request.object.metadata!.annotations!['kube-canary.io/request'] = 'retry';
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'allowed', d.reason);
      assert.equal(d.response.patch, undefined);
    });

    it('does not stand in the way of a release shipped together with it', () => {
      const r = loadReview('review-set-image');
      r.request.object.metadata!.annotations!['kube-canary.io/request'] = 'pause';
      const stored = patchedObject(r, decide(r.request, 'label', config));
      assert.equal(stored.spec!.paused, true);
      assert.equal(stored.metadata!.annotations!['kube-canary.io/request'], 'pause');
    });

    for (const request of ['promote', 'abort']) {
      it(`drops ${request} arriving with a new template (kubectl rollout undo copies an old request from a ReplicaSet) instead of ending the new release unasked`, () => {
        const r = loadReview('review-set-image');
        r.request.object.metadata!.annotations!['kube-canary.io/request'] = request;
        const d = decide(r.request, 'label', config);
        const stored = patchedObject(r, d);
        assert.equal(stored.spec!.paused, true, 'captured');
        assert.equal(stored.metadata!.annotations!['kube-canary.io/request'], undefined);
        assert.ok(d.response.warnings!.includes(`kube-canary: removed kube-canary.io/request=${request} that came with the new template of review (kubectl rollout undo copies an old one from a ReplicaSet); ask again once the release has started`), d.response.warnings!.join('\n'));
        // One the user made before (still pending, unchanged by this update) is theirs: kept.
        const pending = loadReview('review-set-image');
        pending.request.oldObject!.metadata!.annotations!['kube-canary.io/request'] = request;
        pending.request.object.metadata!.annotations!['kube-canary.io/request'] = request;
        assert.equal(patchedObject(pending, decide(pending.request, 'label', config)).metadata!.annotations!['kube-canary.io/request'], request);
      });
    }

    it('a promote arriving with a revert to the running template (kubectl rollout undo mid-release) is removed without telling the user to ask again', () => {
      const r = midRelease();
      setImage(r.request.object, `${IMG}:1.7.0`);
      r.request.object.metadata!.annotations!['kube-canary.io/request'] = 'promote';
      const d = decide(r.request, 'label', config);
      assert.equal(patchedObject(r, d).metadata!.annotations!['kube-canary.io/request'], undefined);
      const w = d.response.warnings!.join('\n');
      assert.match(w, /removed kube-canary.io\/request=promote that came with the new template of review \(kubectl rollout undo copies an old one from a ReplicaSet\)$/m);
      assert.doesNotMatch(w, /ask again/);
      assert.match(w, /is cancelled and traffic returns to stable/);
    });

    it('warns that a Deployment paused by hand is unpaused at the end of the release its new template starts', () => {
      const r = loadReview('review-set-image');
      r.request.oldObject!.spec!.paused = true;
      r.request.object.spec!.paused = true;
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'patched');
      assert.ok(d.response.warnings!.includes('kube-canary: review was paused by hand; its canary release starts now, and promotion or rollback unpauses it (changes made in one update are one release)'), d.response.warnings!.join('\n'));
      assert.ok(!decide(loadReview('review-set-image').request, 'label', config).response.warnings!.some((w) => w.includes('paused by hand')));
    });

    for (const value of ['Promote', 'rollback', '', 'pause ']) {
      it(`denies request=${JSON.stringify(value)}, naming the value and the allowed ones`, () => {
        const r = midRelease();
        r.request.object.metadata!.annotations!['kube-canary.io/request'] = value;
        const d = decide(r.request, 'label', config);
        assert.equal(d.outcome, 'denied');
        assert.equal(d.response.status!.code, 400);
        assert.ok(
          d.response.status!.message.includes(`kube-canary.io/request: ${JSON.stringify(value)} is not a request; allowed: promote, abort, pause, resume, retry`),
          d.response.status!.message,
        );
      });
    }

    it('the denied unpause also gives the annotate form, since the plugin may not be installed', () => {
      const r = midRelease();
      r.request.object.spec!.paused = false;
      const m = decide(r.request, 'label', config).response.status!.message;
      assert.match(m, /kubectl annotate deployment review -n test kube-canary.io\/request=promote, or =abort/);
    });

    it('the denied failed revision gives the annotate form of retry', () => {
      const r = loadReview('review-set-image');
      r.request.oldObject!.metadata!.annotations!['kube-canary.io/failed-revision'] = hashOf(r, 'object');
      r.request.object.metadata!.annotations!['kube-canary.io/failed-revision'] = hashOf(r, 'object');
      const m = decide(r.request, 'label', config).response.status!.message;
      assert.match(m, /kubectl annotate deployment review -n test kube-canary.io\/request=retry/);
    });
  });

  describe('requests that are not for a Deployment', () => {
    it('denies another kind with the fix', () => {
      const r = loadReview('review-set-image');
      r.request.kind = { group: '', version: 'v1', kind: 'Pod' };
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'denied');
      assert.match(d.response.status!.message, /apps\/v1 Deployments only, got v1 Pod/);
    });

    it('denies an object that is not a Deployment', () => {
      const r = loadReview('review-set-image');
      (r.request as { object: unknown }).object = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } };
      assert.match(decide(r.request, 'label', config).response.status!.message, /not an apps\/v1 Deployment/);
    });

    it('denies an UPDATE whose oldObject is a list', () => {
      const r = loadReview('review-set-image');
      (r.request as { oldObject: unknown }).oldObject = [1];
      const d = decide(r.request, 'label', config);
      assert.equal(d.outcome, 'denied');
      assert.match(d.response.status!.message, /came without an apps\/v1 Deployment in request.oldObject/);
    });

    it('denies a Deployment without a template', () => {
      const r = loadReview('review-set-image');
      delete (r.request.object.spec as { template?: unknown }).template;
      assert.match(decide(r.request, 'label', config).response.status!.message, /has no spec.template/);
    });
  });
});
