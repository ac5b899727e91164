/**
 * A `rollout` webhook that never answers (timeout 10m) holds its release, but not silently and
 * not beyond an edit of the analysis: once the check is an interval and 5 s overdue the status
 * and one Warning SlowGates name the hook, its timeout and since when it runs; removing the hook
 * from the analysis mid-release (another hook stays, so the check still runs) abandons that call
 * and the release steps on at once.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { getDeployment, kubectl, waitFor } from './harness/cluster.js';
import type { HostProcess } from './harness/processes.js';
import { stepsOnlyAnalysis, useProgressorEnv } from './harness/progressor.js';
import { ANN_ANALYSIS, deploymentEvents, ship, statusOf, waitForPhase } from './harness/release.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('progressor: a hanging gate is said, and an analysis edited without it is used at the next check', function () {
  this.timeout(240_000);
  const scenario = useProgressorEnv('progressor-hanging-gate', { intervalS: 2 });
  let hook: http.Server;
  let port: number;
  /** Calls of /hang not answered yet; `closed` once the progressor gave up on one (aborted it). /ok answers at once. */
  const held: Array<{ res: http.ServerResponse; closed: boolean }> = [];
  let hold = true;
  let p: HostProcess | undefined;

  // Each test starts from no call held and stops its progressor, whatever it ended with.
  beforeEach(() => {
    hold = true;
    for (const c of held.splice(0)) c.res.destroy();
  });
  afterEach(async () => {
    await p?.stop();
    p = undefined;
  });

  before(async () => {
    hook = http.createServer((req, res) => {
      req.resume();
      if (!hold || req.url === '/ok') {
        res.writeHead(200).end('ok');
        return;
      }
      const call = { res, closed: false };
      res.on('close', () => (call.closed = true));
      held.push(call);
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    port = (hook.address() as AddressInfo).port;
  });

  after(async () => {
    for (const c of held) c.res.destroy();
    hook.closeAllConnections();
    await new Promise((r) => hook.close(r));
  });

  const smoke = () => ({ name: 'smoke', type: 'rollout', url: `http://127.0.0.1:${port}/ok`, timeout: '5s' });
  const analysis = (webhooks: object[]) => JSON.stringify({ ...(JSON.parse(stepsOnlyAnalysis(2)) as object), webhooks });
  const withHook = () => analysis([smoke(), { name: 'load-test', type: 'rollout', url: `http://127.0.0.1:${port}/hang`, timeout: '10m' }]);
  const setAnalysis = (ns: string, analysis: string) => kubectl(['-n', ns, 'annotate', '--overwrite', 'deployment', 'review', `${ANN_ANALYSIS}=${analysis}`]);

  it('says the hold in the status and one Warning, naming the hook and its timeout, without rewriting either while it lasts', async () => {
    const ns = scenario.ns;
    await setAnalysis(ns, withHook());
    p = scenario.env.start('said');
    const logs = () => p!.output().slice(-4000);
    await ship(ns, 'review', 'review:1.8.0');
    await waitFor('the load-test webhook to be called (and hang)', async () => held.length > 0, { timeoutMs: 60_000, describe: logs });
    const calledAt = Date.now();
    const stuck = statusOf(await getDeployment(ns, 'review'))!;

    const said = await waitFor('the status to say what holds the release', async () => {
      const s = statusOf(await getDeployment(ns, 'review'));
      return s && /no answer yet/.test(s.message) ? s : undefined;
    }, { timeoutMs: 30_000, describe: logs });
    // Not before the check is an interval (2 s) and 5 s overdue; soon after that.
    assert.ok(Date.now() - calledAt < 20_000, `said ${Date.now() - calledAt} ms after the call`);
    assert.match(said.message, new RegExp(`^Waiting for the analysis checks of review\\.${ns} at canary weight ${stuck.weight}, running since \\S+: no answer yet from webhook load-test \\(timeout 10m\\)$`));
    assert.equal(said.phase, 'Progressing');
    assert.equal(said.weight, stuck.weight);
    const slow = async () => (await deploymentEvents(ns, 'review')).filter((e) => e.reason === 'SlowGates');
    const events = await waitFor('the SlowGates Event', async () => ((await slow()).length > 0 ? slow() : undefined), { timeoutMs: 10_000 });
    assert.equal(events[0]!.type, 'Warning');
    assert.equal(events[0]!.message, said.message);

    // While it lasts: no rewrite of the Deployment, no repeated Event, still the one call.
    const rv = (await getDeployment(ns, 'review')).metadata?.resourceVersion;
    await sleep(8_000);
    assert.equal((await getDeployment(ns, 'review')).metadata?.resourceVersion, rv, 'no status write per reconcile');
    const again = await slow();
    assert.equal(again.length, 1);
    assert.equal(again[0]!.count ?? 1, 1);
    assert.equal(held.length, 1);
    assert.equal(held[0]!.closed, false, 'saying the hold does not abandon the call');

    hold = false;
    for (const c of held.splice(0)) c.res.writeHead(200).end('ok');
    const on = await waitFor('review to step on once the webhook answered', async () => {
      const s = statusOf(await getDeployment(ns, 'review'));
      return s && s.weight > stuck.weight ? s : undefined;
    }, { timeoutMs: 20_000, describe: logs });
    assert.doesNotMatch(on.message, /no answer yet/);
    assert.equal((await waitForPhase(ns, 'review', ['Succeeded', 'Failed'], 90_000, logs)).phase, 'Succeeded');
  });

  it('steps on at once when the hanging hook is removed from the analysis mid-release; the hanging call is abandoned', async () => {
    const ns = scenario.ns;
    await setAnalysis(ns, withHook());
    p = scenario.env.start('edited');
    const logs = () => p!.output().slice(-4000);
    await ship(ns, 'review', 'review:1.9.0');
    await waitFor('the load-test webhook to be called (and hang)', async () => held.length > 0, { timeoutMs: 60_000, describe: logs });
    const stuck = statusOf(await getDeployment(ns, 'review'))!;
    await sleep(3_000);
    assert.equal(statusOf(await getDeployment(ns, 'review'))!.weight, stuck.weight, 'held by the hook');

    const edited = Date.now();
    await setAnalysis(ns, analysis([smoke()]));
    await waitFor('review to step on under the edited analysis', async () => {
      const s = statusOf(await getDeployment(ns, 'review'));
      return s && s.weight > stuck.weight ? s : undefined;
    }, { timeoutMs: 10_000, describe: logs });
    assert.ok(Date.now() - edited < 6_000, `stepped ${Date.now() - edited} ms after the edit (interval 2 s)`);
    await waitFor('the hanging call to be abandoned (the progressor closed it)', async () => held[0]!.closed, { timeoutMs: 5_000, describe: logs });
    assert.equal(held.length, 1, 'the removed hook is not called again');
    assert.equal((await waitForPhase(ns, 'review', ['Succeeded', 'Failed'], 90_000, logs)).phase, 'Succeeded');
  });
});
