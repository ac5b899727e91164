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

function deployment(name: string, o: { service?: string; revision?: string; startedAt?: number; statusRevision?: string; deleting?: boolean } = {}): V1Deployment {
  const ann: Record<string, string> = {};
  if (o.service) ann['kube-canary.io/service'] = o.service;
  if (o.revision) ann['kube-canary.io/revision'] = o.revision;
  if (o.startedAt !== undefined) ann['kube-canary.io/status'] = JSON.stringify(status({ revision: o.statusRevision ?? o.revision ?? 'x', startedAt: iso(o.startedAt) }));
  return { metadata: { name, namespace: 'test', annotations: ann, ...(o.deleting ? { deletionTimestamp: new Date(T0) } : {}) } };
}

describe('one release at a time per routed Service: who routes it', () => {
  it('the release that started first; the other waits, whichever of them asks', () => {
    const wa = deployment('wa', { service: 'web', revision: 'a1', startedAt: T0 });
    const wb = deployment('wb', { service: 'web', revision: 'b1', startedAt: T0 + 5000 });
    assert.equal(routeHolder(wb, [wa, wb]), 'wa');
    assert.equal(routeHolder(wa, [wa, wb]), undefined);
  });

  it('a release not started yet (captured, no status of its revision) comes after every started one; between two such, the name decides', () => {
    const started = deployment('zz', { service: 'web', revision: 'z1', startedAt: T0 + 60_000 });
    const fresh = deployment('aa', { service: 'web', revision: 'a2', startedAt: T0, statusRevision: 'a1' });
    assert.equal(routeHolder(fresh, [started]), 'zz');
    assert.equal(routeHolder(started, [fresh]), undefined);
    const b = deployment('b', { service: 'web', revision: 'b1' });
    const a = deployment('a', { service: 'web', revision: 'a1' });
    assert.equal(routeHolder(b, [a]), 'a');
    assert.equal(routeHolder(a, [b]), undefined);
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

  it('a release already past its first weight when the other one appeared (a race) is frozen, not rolled back, and goes on after', () => {
    const s = status({ phase: 'Progressing', weight: 20, stepIndex: 0, lastCheckAt: iso(T0) });
    const d = decided(step(obs({ status: s, config: config() }, { ...holding, canary: readyCanary() }), T0 + 60_000));
    assert.equal(d.status?.phase, 'Progressing');
    assert.equal(d.status?.weight, 20);
    assert.ok(!d.actions.some((a) => ['setWeight', 'deleteCanary', 'ensureCanary'].includes(a.type)));
  });
});
