/**
 * GateRuns: gate sets that outlast the inline wait go on outside the reconcile slot; an answer
 * belongs to the state it was started in and is used until a committed decision spends it.
 */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { GateRuns, GateSlots } from '../../src/progressor/gate-runs.js';
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

function runs(inlineMs = 20, slots = new GateSlots(32)) {
  const clock = { now: 1_000_000 };
  const woken: string[] = [];
  const r = new GateRuns({ inlineMs, clock: () => clock.now, onDone: (k) => woken.push(k), slots });
  return { r, clock, woken };
}

/** Gate sets per release that answer when told to; `started` is the order they started in. */
function heldPerRelease() {
  const started: string[] = [];
  const calls = new Map<string, { signal: AbortSignal; answer: (o: GateOutcome) => void; fail: (e: Error) => void }>();
  const start = (key: string) => (signal: AbortSignal) =>
    new Promise<GateOutcome>((answer, fail) => {
      started.push(key);
      calls.set(key, { signal, answer, fail });
    });
  return { started, calls, start };
}

/** Slots of `limit` whose counts are recorded, with the most ever running. */
function countedSlots(limit: number) {
  const counts = { waiting: 0, running: 0, peak: 0 };
  const slots = new GateSlots(limit, (c) => {
    Object.assign(counts, c);
    counts.peak = Math.max(counts.peak, c.running);
  });
  return { slots, counts };
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

describe('gate runs in flight are bounded (--gate-concurrency)', () => {
  const keys = ['test/a', 'test/b', 'test/c', 'test/d', 'test/e'];

  it('with 2 slots and 5 releases whose gates hang, 2 run at once; the others start in the order they asked as slots free, and each answer wakes its release', async () => {
    const { slots, counts } = countedSlots(2);
    const { r, woken } = runs(20, slots);
    const g = heldPerRelease();
    for (const k of keys) assert.equal(await r.get(k, 's1', NEED, 5, 60_000, g.start(k)), undefined);
    assert.deepEqual(g.started, ['test/a', 'test/b']);
    assert.deepEqual([counts.running, counts.waiting], [2, 3]);
    assert.deepEqual(
      keys.map((k) => r.progress(k, NEED)?.waiting),
      [false, false, true, true, true],
    );
    // Asked again meanwhile (a watch event, the resync): still waiting, not queued twice.
    assert.equal(await r.get('test/e', 's1', NEED, 6, 60_000, g.start('test/e')), undefined);

    g.calls.get('test/b')!.answer(PASS);
    await tick();
    assert.deepEqual(g.started, ['test/a', 'test/b', 'test/c']);
    g.calls.get('test/a')!.answer(PASS);
    await tick();
    assert.deepEqual(g.started, ['test/a', 'test/b', 'test/c', 'test/d']);
    g.calls.get('test/d')!.answer(PASS);
    await tick();
    assert.deepEqual(g.started, keys);
    g.calls.get('test/c')!.answer(PASS);
    g.calls.get('test/e')!.answer(PASS);
    await tick();
    assert.equal(counts.peak, 2);
    assert.deepEqual([counts.running, counts.waiting], [0, 0]);
    assert.deepEqual(woken, ['test/b', 'test/a', 'test/d', 'test/c', 'test/e']);
    for (const k of keys) assert.deepEqual(await r.get(k, 's1', NEED, 7, 60_000, g.start(k)), { outcome: PASS, requestedAt: 5 }, `${k} is answered for the instant it asked`);
  });

  it('a reconcile whose run waits for a slot returns at once instead of holding its reconcile slot; a free slot still answers inline', async () => {
    const { slots } = countedSlots(1);
    const { r, woken } = runs(60_000, slots);
    const a = heldPerRelease();
    const inline = r.get('test/a', 's1', NEED, 5, 60_000, a.start('test/a'));
    await tick();
    const b = heldPerRelease();
    assert.equal(await r.get('test/b', 's1', NEED, 5, 60_000, b.start('test/b')), undefined);
    assert.deepEqual(b.started, []);
    a.calls.get('test/a')!.answer(PASS);
    assert.deepEqual(await inline, { outcome: PASS, requestedAt: 5 });
    await tick();
    assert.deepEqual(b.started, ['test/b']);
    b.calls.get('test/b')!.answer(PASS);
    await tick();
    assert.deepEqual(woken, ['test/b']);
  });

  it('a waiting run whose release state changes, whose release is deleted or whose controller stops never starts and leaves the queue; one aborted while running keeps its slot until it ends', async () => {
    const { slots, counts } = countedSlots(1);
    const { r, woken } = runs(20, slots);
    const g = heldPerRelease();
    const stop = new AbortController();
    for (const k of keys) await r.get(k, 's1', NEED, 5, 60_000, g.start(k), stop.signal);
    assert.deepEqual([counts.running, counts.waiting], [1, 4]);

    r.enter('test/b', 's2'); // b committed (or a new revision): its waiting run is not wanted
    r.forget('test/c'); // c's Deployment was deleted
    assert.deepEqual([counts.running, counts.waiting], [1, 2]);
    assert.equal(r.progress('test/b', NEED), undefined);

    // a's state changes while it runs: aborted, but its requests are in flight until it ends.
    r.enter('test/a', 's2');
    assert.equal(g.calls.get('test/a')!.signal.aborted, true);
    await tick();
    assert.deepEqual(g.started, ['test/a']);
    g.calls.get('test/a')!.fail(new Error('cancelled'));
    await tick();
    assert.deepEqual(g.started, ['test/a', 'test/d'], 'the next one still wanted starts, not b or c');

    stop.abort(); // the controller stops: d is aborted, e leaves the queue unstarted
    g.calls.get('test/d')!.fail(new Error('cancelled'));
    await tick();
    assert.deepEqual(g.started, ['test/a', 'test/d']);
    assert.deepEqual([counts.running, counts.waiting], [0, 0]);
    assert.deepEqual(woken, []);
    assert.equal(getEventListeners(stop.signal, 'abort').length, 0);
  });

  it('a run that throws frees its slot, in the background or while its reconcile waits for it', async () => {
    const { slots, counts } = countedSlots(1);
    const { r, woken } = runs(20, slots);
    const g = heldPerRelease();
    await r.get('test/a', 's1', NEED, 5, 60_000, g.start('test/a'));
    await r.get('test/b', 's1', NEED, 5, 60_000, g.start('test/b'));
    g.calls.get('test/a')!.fail(new Error('gate runner bug'));
    await tick();
    assert.deepEqual(g.started, ['test/a', 'test/b']);
    assert.deepEqual(woken, ['test/a']);
    await assert.rejects(r.get('test/a', 's1', NEED, 6, 60_000, g.start('test/a')), /gate runner bug/);
    g.calls.get('test/b')!.answer(PASS);
    await tick();

    const { r: inline } = runs(1000, slots);
    await assert.rejects(inline.get('test/c', 's1', NEED, 5, 60_000, async () => Promise.reject(new Error('bug'))), /bug/);
    await assert.rejects(
      inline.get('test/d', 's1', NEED, 5, 60_000, () => {
        throw new Error('thrown before any promise');
      }),
      /thrown before any promise/,
    );
    assert.deepEqual(await inline.get('test/e', 's1', NEED, 5, 60_000, async () => PASS), { outcome: PASS, requestedAt: 5 });
    assert.deepEqual([counts.running, counts.waiting], [0, 0]);
  });

  it('a freed slot goes to the first waiter, not to a run that asks in between', async () => {
    const order: string[] = [];
    let release!: () => void;
    let newcomer: Promise<void> | undefined;
    const slots = new GateSlots(1, (c) => {
      // Right after the first run ended and handed its slot over, before the waiter resumed.
      if (c.running === 1 && c.waiting === 0 && !newcomer && order.length === 1) newcomer = slots.run(new AbortController().signal, async () => void order.push('newcomer'));
    });
    const first = slots.run(new AbortController().signal, () => new Promise<void>((r) => ((release = r), order.push('first'))));
    const waiter = slots.run(new AbortController().signal, async () => void order.push('waiter'));
    release();
    await Promise.all([first, waiter]);
    await newcomer;
    assert.deepEqual(order, ['first', 'waiter', 'newcomer']);
  });
});
