/**
 * One release at a time per routed Service: step() holds a release while another one that
 * started first routes the same Service, touching neither routes nor canary, and starts it with
 * fresh clocks once that one ends.
 */
import assert from 'node:assert/strict';
import type { V1Deployment } from '@kubernetes/client-node';
import { routeHolder, routedService } from '../../src/progressor/shared-service.js';
import { step } from '../../src/progressor/step.js';
import { T0, config, iso, obs, readyCanary, status } from './fixtures.js';
import { decided, eventActions } from './step-table.js';

function deployment(name: string, o: { service?: string; revision?: string; startedAt?: number; statusRevision?: string; deleting?: boolean; heldBy?: string; phase?: 'Progressing' | 'Succeeded' } = {}): V1Deployment {
  const ann: Record<string, string> = {};
  if (o.service) ann['kube-canary.io/service'] = o.service;
  if (o.revision) ann['kube-canary.io/revision'] = o.revision;
  // `startedAt`: when it started routing its Service (status.routing); a waiting one (heldBy) routes nothing.
  if (o.startedAt !== undefined) {
    const s = status({ revision: o.statusRevision ?? o.revision ?? 'x', startedAt: iso(o.startedAt), routing: { service: o.service ?? name, since: iso(o.startedAt) }, ...(o.phase ? { phase: o.phase } : {}) });
    if (o.heldBy) {
      delete s.routing;
      s.heldBy = o.heldBy;
    }
    ann['kube-canary.io/status'] = JSON.stringify(s);
  }
  return { metadata: { name, namespace: 'test', annotations: ann, ...(o.deleting ? { deletionTimestamp: new Date(T0) } : {}) } };
}

describe('one release at a time per routed Service: who routes it', () => {
  it('the release that started first; the other waits, whichever of them asks', () => {
    const wa = deployment('wa', { service: 'web', revision: 'a1', startedAt: T0 });
    const wb = deployment('wb', { service: 'web', revision: 'b1', startedAt: T0 + 5000 });
    assert.equal(routeHolder(wb, [wa, wb]), 'wa');
    assert.equal(routeHolder(wa, [wa, wb]), undefined);
  });

  it('a release that waits ranks after every routing one, whatever its own start; a new revision mid-release keeps the Service', () => {
    // wb waits (heldBy) since T0 + 5 s; wa, routing since T0 + 60 s, gets a new revision (its status is still of a1).
    const wb = deployment('wb', { service: 'web', revision: 'b1', startedAt: T0 + 5000, heldBy: 'wa' });
    const wa = deployment('wa', { service: 'web', revision: 'a2', startedAt: T0 + 60_000, statusRevision: 'a1' });
    assert.equal(routeHolder(wb, [wa]), 'wa');
    assert.equal(routeHolder(wa, [wb]), undefined);
  });

  it('releases not started (no status, or the last one ended) rank after routing ones; between two such, the name decides, the same for both', () => {
    const routing = deployment('zz', { service: 'web', revision: 'z1', startedAt: T0 + 60_000 });
    const fresh = deployment('aa', { service: 'web', revision: 'a2', startedAt: T0, statusRevision: 'a1', phase: 'Succeeded' });
    assert.equal(routeHolder(fresh, [routing]), 'zz');
    assert.equal(routeHolder(routing, [fresh]), undefined);
    const b = deployment('b', { service: 'web', revision: 'b1' });
    const a = deployment('a', { service: 'web', revision: 'a1' });
    assert.equal(routeHolder(b, [a]), 'a');
    assert.equal(routeHolder(a, [b]), undefined);
  });

  it('for a Deployment with no release in progress (idle, opted out, deleted), any release on its Service holds it', () => {
    const live = deployment('wa', { service: 'web', revision: 'a1', startedAt: T0 });
    assert.equal(routeHolder(deployment('wb', { service: 'web' }), [live]), 'wa');
    assert.equal(routeHolder(deployment('wb', { service: 'web', revision: 'b1', startedAt: 0, deleting: true, heldBy: 'wa' }), [live]), 'wa', 'deleted while it waited');
    // One that routes its Service and is deleted (or loses its revision annotation by hand) sets its routes back itself.
    const waiting = deployment('wa', { service: 'web', revision: 'a1', startedAt: T0, heldBy: 'wb' });
    assert.equal(routeHolder(deployment('wb', { service: 'web', revision: 'b1', startedAt: T0 + 1000, deleting: true }), [waiting]), undefined);
    assert.equal(routeHolder(deployment('wb', { service: 'web', startedAt: T0 + 1000 }), [waiting]), undefined);
    assert.equal(routeHolder(deployment('wb', { service: 'web' }), []), undefined);
  });

  it('a release that never routed (it waited, then was promoted or aborted) does not take the Service from the one that routes it', () => {
    const wa = deployment('wa', { service: 'web', revision: 'a2', startedAt: T0 + 60_000 });
    const wb = deployment('wb', { service: 'web', revision: 'b1' });
    wb.metadata!.annotations!['kube-canary.io/status'] = JSON.stringify(status({ phase: 'Promoting', revision: 'b1', startedAt: iso(T0 + 5000), routing: undefined }));
    assert.equal(routeHolder(wa, [wb]), undefined);
    assert.equal(routeHolder(wb, [wa]), 'wa');
  });

  it("a release whose kube-canary.io/service changed ranks by the new Service's routing, not by its start on the old one", () => {
    const a = deployment('a', { service: 'web', revision: 'a1', startedAt: T0 });
    a.metadata!.annotations!['kube-canary.io/service'] = 'api'; // moved at weight 0 (the webhook allows that)
    const c = deployment('c', { service: 'api', revision: 'c1', startedAt: T0 + 3600_000 });
    assert.equal(routeHolder(c, [a]), undefined, 'c keeps api');
    assert.equal(routeHolder(a, [c]), 'c');
  });

  it('ignores other Services (the Deployment name is the default), Deployments with no release in progress, and ones being deleted', () => {
    const me = deployment('web', { revision: 'w2', startedAt: T0 + 1000 });
    assert.equal(routedService(me), 'web');
    assert.equal(routeHolder(me, [deployment('api', { revision: 'p1', startedAt: T0 })]), undefined);
    assert.equal(routeHolder(me, [deployment('web-v2', { service: 'web', startedAt: T0 })]), undefined, 'no kube-canary.io/revision: no release in progress');
    assert.equal(routeHolder(me, [deployment('web-v2', { service: 'web', revision: 'v1', startedAt: T0, deleting: true })]), undefined);
    assert.equal(routeHolder(me, [deployment('web-v2', { service: 'web', revision: 'v1', startedAt: T0 })]), 'web-v2');
  });
});

describe('one release at a time per routed Service: the release that waits', () => {
  const holding = { routeHolder: 'wa', routes: { stable: 80, canary: 20 } };

  it('a new release waits: no canary, no routes, no checks; says why once', () => {
    const d = decided(step(obs({}, holding), T0));
    assert.equal(d.status?.phase, 'Initializing');
    assert.equal(d.status?.heldBy, 'wa');
    assert.deepEqual(d.actions.filter((a) => ['ensureCanary', 'ensureRoutes', 'setWeight', 'deleteCanary'].includes(a.type)), []);
    const said = eventActions(d.actions).map((e) => e.message);
    assert.ok(said.some((m) => /^Waiting for the release of wa\.test to end: it routes Service review too/.test(m)), said.join('\n'));
    assert.equal(d.requeueAfterMs, 10_000);

    const again = decided(step(obs({ status: d.status! }, holding), T0 + 10_000));
    assert.deepEqual(eventActions(again.actions), [], 'said once, not every interval');
    assert.ok(!again.actions.some((a) => a.type === 'writeStatus'), 'nothing to write while it waits');
  });

  it('an abort while it waits rolls it back without touching the routes the other release sets', () => {
    const s = status({ heldBy: 'wa', message: 'Waiting for the release of wa.test to end' });
    const d = decided(step(obs({ status: s, request: 'abort' }, holding), T0 + 5000));
    assert.equal(d.status?.phase, 'RollingBack');
    assert.ok(!d.actions.some((a) => a.type === 'setWeight' || a.type === 'ensureRoutes'), JSON.stringify(d.actions));
  });

  it('once the other release has ended it starts, its progress deadline counted from then', () => {
    const s = status({ heldBy: 'wa', message: 'Waiting for the release of wa.test to end', lastTransitionAt: iso(T0) });
    // Ten minutes of waiting, far beyond the 60 s progress deadline: not a missed deadline.
    const d = decided(step(obs({ status: s }, { routes: { stable: 100, canary: 0 } }), T0 + 600_000));
    assert.equal(d.status?.phase, 'Initializing');
    assert.equal(d.status?.heldBy, undefined);
    assert.equal(d.status?.lastTransitionAt, iso(T0 + 600_000));
    assert.ok(d.actions.some((a) => a.type === 'ensureCanary'));
  });

  it('a release already past its first weight when the other one appeared (both started at once) starts again: canary removed, Initializing, weight 0; routes untouched', () => {
    const s = status({ phase: 'Progressing', weight: 20, stepIndex: 0, lastCheckAt: iso(T0), failedChecks: 1 });
    const d = decided(step(obs({ status: s, config: config() }, { ...holding, canary: readyCanary() }), T0 + 60_000));
    assert.equal(d.status?.phase, 'Initializing');
    assert.equal(d.status?.weight, 0);
    assert.equal(d.status?.stepIndex, -1);
    assert.equal(d.status?.heldBy, 'wa');
    assert.equal(d.status?.lastCheckAt, undefined);
    assert.ok(d.actions.some((a) => a.type === 'deleteCanary'));
    assert.ok(!d.actions.some((a) => ['setWeight', 'ensureRoutes', 'ensureCanary'].includes(a.type)));
    assert.match(eventActions(d.actions).map((e) => e.message).join('\n'), /starts again from its first step then/);
  });

  it('a paused one stays paused while it waits, from its first step again: canary removed, weight 0, the pause message kept', () => {
    const s = status({ phase: 'Paused', weight: 25, stepIndex: 0, message: 'Release of review.test paused by request at canary weight 25; resume it with ...' });
    const d = decided(step(obs({ status: s }, { ...holding, canary: readyCanary() }), T0 + 5000));
    assert.equal(d.status?.phase, 'Paused');
    assert.equal(d.status?.heldBy, 'wa');
    assert.equal(d.status?.routing, undefined, 'routes nothing while it waits');
    assert.deepEqual([d.status?.weight, d.status?.stepIndex], [0, -1]);
    assert.equal(d.status?.message, s.message);
    assert.ok(d.actions.some((a) => a.type === 'deleteCanary'));
    assert.ok(!d.actions.some((a) => a.type === 'ensureCanary' || a.type === 'setWeight'));
    // Once the other has ended: still paused, and no share sent to a canary that is not there.
    const after = decided(step(obs({ status: d.status! }, { routes: { stable: 100, canary: 0 } }), T0 + 60_000));
    assert.equal(after.status?.phase, 'Paused');
    assert.ok(!after.actions.some((a) => a.type === 'setWeight'), JSON.stringify(after.actions));
  });

  it('taking over routes the other release left at its weight (it was deleted, or opted out), it sets them to its own without a RoutesRestored Warning blaming "outside kube-canary"', () => {
    const s = status({ heldBy: 'wa', routing: undefined, message: 'Waiting for the release of wa.test to end' });
    const d = decided(step(obs({ status: s }, { routes: { stable: 70, canary: 30 } }), T0 + 60_000));
    assert.ok(d.actions.some((a) => a.type === 'setWeight' && a.canary === 0));
    assert.ok(!eventActions(d.actions).some((e) => e.reason === 'RoutesRestored'), JSON.stringify(eventActions(d.actions)));
  });

  it('once it no longer waits it routes the Service: stamped (its rank), and the routes ensured (so it co-owns generated ones)', () => {
    const s = status({ heldBy: 'wa', routing: undefined, message: 'Waiting for the release of wa.test to end' });
    const d = decided(step(obs({ status: s }, { routes: { stable: 100, canary: 0 } }), T0 + 60_000));
    assert.deepEqual(d.status?.routing, { service: 'review', since: iso(T0 + 60_000) });
    assert.ok(d.actions.some((a) => a.type === 'ensureRoutes'));
  });

});
