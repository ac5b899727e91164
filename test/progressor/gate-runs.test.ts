/**
 * GateRuns: gate sets that outlast the inline wait go on outside the reconcile slot; an answer
 * belongs to the state it was started in and is used until a committed decision spends it.
 */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { GateRuns } from '../../src/progressor/gate-runs.js';
import type { GateOutcome } from '../../src/progressor/types.js';

const PASS: GateOutcome = { passed: true, rollbackRequested: false, results: [{ name: 'request-success-rate', passed: true, message: 'ok' }] };
const KEY = 'test/review';
const NEED = 'analysis|rev1|Progressing';
const tick = () => new Promise((r) => setImmediate(r));

/** A gate set that answers when told to, and records the signal it was given. */
function held() {
  const calls: { signal: AbortSignal; answer: (o: GateOutcome) => void; fail: (e: Error) => void }[] = [];
  const start = (signal: AbortSignal) => new Promise<GateOutcome>((answer, fail) => calls.push({ signal, answer, fail }));
  return { calls, start };
}

function runs(inlineMs = 20) {
  const clock = { now: 1_000_000 };
  const woken: string[] = [];
  const r = new GateRuns({ inlineMs, clock: () => clock.now, onDone: (k) => woken.push(k) });
  return { r, clock, woken };
}

describe('gate runs outside the reconcile slot', () => {
  it('an answer within the inline wait is returned at once, and wakes nobody', async () => {
    const { r, woken } = runs(1000);
    const a = await r.get(KEY, 's1', NEED, 5, 60_000, async () => PASS);
    assert.deepEqual(a, { outcome: PASS, requestedAt: 5 });
    await tick();
    assert.deepEqual(woken, []);
  });

  it('a slower one is left to the background; its answer wakes the release once and is used without running again, for the instant it was started for', async () => {
    const { r, woken, clock } = runs();
    const g = held();
    assert.equal(await r.get(KEY, 's1', NEED, 5, 60_000, g.start), undefined);
    // Another reconcile meanwhile (a watch event, the resync) neither waits nor starts another run.
    assert.equal(await r.get(KEY, 's1', NEED, 6, 60_000, g.start), undefined);
    assert.equal(g.calls.length, 1);
    clock.now += 30_000;
    g.calls[0]!.answer(PASS);
    await tick();
    assert.deepEqual(woken, [KEY]);
    assert.deepEqual(await r.get(KEY, 's1', NEED, 7, 60_000, g.start), { outcome: PASS, requestedAt: 5 });
    // Not spent (the commit failed, say): the retry gets the same answer.
    assert.deepEqual(await r.get(KEY, 's1', NEED, 8, 60_000, g.start), { outcome: PASS, requestedAt: 5 });
    assert.equal(g.calls.length, 1);
  });

  it('a committed decision spends the answers it used: the next check runs again', async () => {
    const { r } = runs();
    let n = 0;
    const start = async () => ({ ...PASS, results: [{ name: `run ${++n}`, passed: true, message: '' }] });
    await r.get(KEY, 's1', NEED, 5, 60_000, start);
    r.spent(KEY, [NEED]);
    assert.equal(r.size, 0);
    const a = await r.get(KEY, 's1', NEED, 9, 60_000, start);
    assert.equal(a?.outcome.results[0]?.name, 'run 2');
    assert.equal(a?.requestedAt, 9);
  });

  it('a new state (a commit, a new revision) aborts the runs of the old one, whose answers are never used and wake nobody', async () => {
    const { r, woken } = runs();
    const g = held();
    await r.get(KEY, 's1', NEED, 5, 60_000, g.start);
    await r.get(KEY, 's2', 'analysis|rev2|Progressing', 6, 60_000, g.start);
    assert.equal(g.calls[0]!.signal.aborted, true);
    assert.equal(g.calls[1]!.signal.aborted, false);
    g.calls[0]!.answer(PASS);
    await tick();
    assert.deepEqual(woken, []);
    // The old need asked again in the new state is a new run.
    await r.get(KEY, 's2', NEED, 7, 60_000, g.start);
    assert.equal(g.calls.length, 3);
  });

  it('an answer older than one analysis interval is not used: the checks run again', async () => {
    const { r, clock } = runs();
    let n = 0;
    const start = async () => ({ ...PASS, results: [{ name: `run ${++n}`, passed: true, message: '' }] });
    await r.get(KEY, 's1', NEED, 5, 10_000, start);
    clock.now += 10_001;
    const a = await r.get(KEY, 's1', NEED, 6, 10_000, start);
    assert.equal(a?.outcome.results[0]?.name, 'run 2');
  });

  it('two gate sets of one step, each slower than the interval, are not expired one while the other runs: the step decides with both', async () => {
    const { r, clock } = runs();
    const analysis = held();
    const confirm = held();
    const CONFIRM = 'confirm-traffic-increase|rev1|Progressing';
    assert.equal(await r.get(KEY, 's1', NEED, 5, 10_000, analysis.start), undefined);
    clock.now += 15_000;
    analysis.calls[0]!.answer(PASS);
    await tick();
    assert.ok(await r.get(KEY, 's1', NEED, 6, 10_000, analysis.start));
    assert.equal(await r.get(KEY, 's1', CONFIRM, 6, 10_000, confirm.start), undefined);
    clock.now += 15_000; // the analysis answer is 15 s old now, but the confirm gate was still running
    confirm.calls[0]!.answer(PASS);
    await tick();
    assert.ok(await r.get(KEY, 's1', NEED, 7, 10_000, analysis.start), 'the analysis answer is kept');
    assert.ok(await r.get(KEY, 's1', CONFIRM, 7, 10_000, confirm.start));
    assert.deepEqual([analysis.calls.length, confirm.calls.length], [1, 1]);
    // Both answers an interval old: the step runs its checks again.
    clock.now += 10_001;
    assert.equal(await r.get(KEY, 's1', NEED, 8, 10_000, analysis.start), undefined);
    assert.equal(analysis.calls.length, 2);
  });

  it('a run that throws while the reconcile waits for it fails that reconcile (retried with backoff, said in an Event), not a silent stall', async () => {
    const { r } = runs(1000);
    await assert.rejects(r.get(KEY, 's1', NEED, 5, 60_000, async () => Promise.reject(new Error('gate runner bug'))), /gate runner bug/);
    assert.equal(r.size, 0);
  });

  it('a run that throws in the background wakes the release, whose next reconcile fails with it (backoff, an Event); the one after runs it again', async () => {
    const { r, woken } = runs();
    const g = held();
    assert.equal(await r.get(KEY, 's1', NEED, 5, 60_000, g.start), undefined);
    g.calls[0]!.fail(new Error('bug'));
    await tick();
    assert.deepEqual(woken, [KEY]);
    await assert.rejects(r.get(KEY, 's1', NEED, 6, 60_000, g.start), /bug/);
    assert.equal(g.calls.length, 1, 'not started again by the reconcile that says the failure');
    assert.equal(r.size, 0);
    await r.get(KEY, 's1', NEED, 7, 60_000, g.start);
    assert.equal(g.calls.length, 2);
  });

  it('forget() aborts the runs of a deleted release; stopping the controller aborts every run, and no listener stays on its signal', async () => {
    const { r, woken } = runs();
    const stop = new AbortController();
    const g = held();
    await r.get(KEY, 's1', NEED, 5, 60_000, g.start, stop.signal);
    await r.get('test/other', 's1', NEED, 5, 60_000, g.start, stop.signal);
    r.forget(KEY);
    assert.equal(g.calls[0]!.signal.aborted, true);
    assert.equal(g.calls[1]!.signal.aborted, false);
    stop.abort();
    assert.equal(g.calls[1]!.signal.aborted, true);
    for (const c of g.calls) c.answer(PASS);
    await tick();
    assert.deepEqual(woken, []);

    const live = new AbortController();
    for (let i = 0; i < 50; i++) await r.get(`test/r${i}`, 's1', NEED, 5, 60_000, async () => PASS, live.signal);
    assert.equal(getEventListeners(live.signal, 'abort').length, 0);
  });
});
