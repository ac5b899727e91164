/**
 * Issue #4: two progressor replicas on one Lease: exactly one acts; when it is killed the other
 * takes over within the lease duration and finishes the release; a replica stopped with
 * SIGTERM hands the lease over at once.
 */
import assert from 'node:assert/strict';
import { getDeployment, waitFor } from './harness/cluster.js';
import type { HostProcess } from './harness/processes.js';
import { LEASE, kill9, leaseHolder, useProgressorEnv } from './harness/progressor.js';
import { ReleaseRecorder, deploymentEvents, routeWeights, ship, statusOf, waitForPhase } from './harness/release.js';

const PROGRESSOR_NS = 'kube-canary';

describe('progressor: two replicas, one Lease', function () {
  this.timeout(240_000);
  const scenario = useProgressorEnv('progressor-lease', { intervalS: 2 });
  /** The replica that took over in the first test, still running for the second. */
  let survivor: { id: string; proc: HostProcess } | undefined;

  it('exactly one replica acts; the other takes over when it is killed and finishes the release', async () => {
    const replicas = { a: scenario.env.start('replica-a'), b: scenario.env.start('replica-b') };
    const holder = await waitFor('a lease holder', () => leaseHolder(PROGRESSOR_NS, scenario.env.leaseName), { timeoutMs: 30_000 });
    assert.ok(holder === 'replica-a' || holder === 'replica-b', holder);
    const leader = holder === 'replica-a' ? replicas.a : replicas.b;
    const standby = holder === 'replica-a' ? replicas.b : replicas.a;
    const standbyId = holder === 'replica-a' ? 'replica-b' : 'replica-a';
    // Give the standby a few renew periods to prove it stays a standby.
    await new Promise((r) => setTimeout(r, 2000));
    assert.ok(!standby.output().includes('became leader'), standby.output().slice(-2000));

    const rec = new ReleaseRecorder(scenario.ns, 'review').start(150);
    try {
      await ship(scenario.ns, 'review', 'review:1.8.0');
      await waitFor('canary weight 20', async () => (statusOf(await getDeployment(scenario.ns, 'review'))?.weight ?? 0) >= 20, { timeoutMs: 60_000, describe: () => rec.describe() });
      const before = await deploymentEvents(scenario.ns, 'review');
      const actors = new Set(before.filter((e) => e.source?.component === 'kube-canary-progressor').map((e) => e.reportingInstance));
      assert.deepEqual([...actors], [holder], 'only the leader wrote Events');
      assert.ok(!standby.output().includes('"event":"transition"'), 'the standby made no transition');

      await kill9(leader);
      const killedAt = Date.now();
      await waitFor('the standby to take the lease', async () => (await leaseHolder(PROGRESSOR_NS, scenario.env.leaseName)) === standbyId, { timeoutMs: LEASE.durationMs + 10_000 });
      const takeoverMs = Date.now() - killedAt;
      assert.ok(takeoverMs <= LEASE.durationMs + 5_000, `took over in ${takeoverMs} ms`);

      const done = await waitForPhase(scenario.ns, 'review', ['Succeeded', 'Failed'], 90_000, () => `${rec.describe()}\n--- standby:\n${standby.output().slice(-4000)}`);
      assert.equal(done.phase, 'Succeeded', rec.describe());
      assert.deepEqual(await routeWeights(scenario.ns, 'review'), { stable: 100, canary: 0, vs: 'review-virtualservice' });
      const after = (await deploymentEvents(scenario.ns, 'review')).filter((e) => e.source?.component === 'kube-canary-progressor');
      const late = after.filter((e) => new Date((e.eventTime ?? e.firstTimestamp) as unknown as string).getTime() > killedAt + 1000);
      assert.ok(late.length > 0 && late.every((e) => e.reportingInstance === standbyId), late.map((e) => `${e.reportingInstance}: ${e.message}`).join('\n'));
      assert.equal(after.filter((e) => (e.message ?? '').startsWith('Promoting revision')).length, 1);
      survivor = { id: standbyId, proc: standby };
    } finally {
      await rec.stop();
    }
  });

  it('a replica stopped with SIGTERM releases the lease: the next one leads without waiting for expiry', async function () {
    if (!survivor) this.skip();
    const leaderId = await leaseHolder(PROGRESSOR_NS, scenario.env.leaseName);
    assert.equal(leaderId, survivor!.id);
    const third = scenario.env.start('replica-c');
    // Up and campaigning (startup under tsx can take seconds on a loaded host), then a few retry periods.
    await waitFor('replica-c to start', () => third.output().includes('progressor starting'), { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 1500));
    assert.ok(!third.output().includes('became leader'), 'replica-c waits while the lease is held');
    const stoppedAt = Date.now();
    await survivor!.proc.stop(); // SIGTERM: stop acting, then release the lease
    await waitFor('replica-c to lead', async () => (await leaseHolder(PROGRESSOR_NS, scenario.env.leaseName)) === 'replica-c', { timeoutMs: LEASE.durationMs + 5_000 });
    const handoverMs = Date.now() - stoppedAt;
    // Expiry would take at least the lease duration after the last renewal; a release does not.
    assert.ok(handoverMs < LEASE.durationMs - 1000, `handover took ${handoverMs} ms`);
    assert.match(survivor!.proc.output(), /released the lease/);
    await waitFor('replica-c to log leadership', () => third.output().includes('became leader'), { timeoutMs: 5_000 });
  });
});
