import assert from 'node:assert/strict';
import { KubeEventRecorder } from '../../src/kube/events.js';
import { createLogger } from '../../src/kube/logger.js';

/** Test double of the API client: records Event POSTs, each answered when the test says so. */
class SlowApi {
  posted: Array<{ name: string; message: string }> = [];
  inFlight = 0;
  maxInFlight = 0;
  private pending: Array<() => void> = [];
  failNext = false;
  async request<T = unknown>(_method: string, _path: string, o: { body?: unknown } = {}): Promise<T> {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise<void>((r) => this.pending.push(r));
    this.inFlight -= 1;
    if (this.failNext) {
      this.failNext = false;
      throw new Error('boom');
    }
    const b = o.body as { involvedObject: { name: string }; message: string };
    this.posted.push({ name: b.involvedObject.name, message: b.message });
    return {} as T;
  }
  /** Answers every request in flight, and those they unblock, until nothing is pending. */
  async drain(): Promise<void> {
    for (let i = 0; i < 1000; i++) {
      await new Promise((r) => setImmediate(r));
      const p = this.pending.splice(0);
      if (p.length === 0 && this.inFlight === 0) return;
      p.forEach((r) => r());
    }
  }
}

const log = createLogger('test', 'silent');
const t = (name: string) => ({ namespace: 'test', name, uid: `uid-${name}` });

describe('event recorder', () => {
  it('emit() returns at once; the POST happens in the background', async () => {
    const api = new SlowApi();
    const r = new KubeEventRecorder(api, 'me', log);
    const ret = r.emit(t('review'), false, 'Synced', 'New revision detected review.test');
    assert.equal(ret, undefined);
    assert.equal(api.posted.length, 0);
    await api.drain();
    assert.deepEqual(api.posted, [{ name: 'review', message: 'New revision detected review.test' }]);
  });

  it("keeps one object's Events in order and bounds the POSTs in flight", async () => {
    const api = new SlowApi();
    const r = new KubeEventRecorder(api, 'me', log, { concurrency: 3 });
    for (const name of ['a', 'b', 'c', 'd', 'e']) for (const w of [25, 50]) r.emit(t(name), false, 'Synced', `Advance ${name}.test canary weight ${w}`);
    await api.drain();
    assert.equal(api.posted.length, 10);
    assert.ok(api.maxInFlight <= 3, `at most 3 in flight, saw ${api.maxInFlight}`);
    for (const name of ['a', 'b', 'c', 'd', 'e']) {
      assert.deepEqual(api.posted.filter((p) => p.name === name).map((p) => p.message), [`Advance ${name}.test canary weight 25`, `Advance ${name}.test canary weight 50`]);
    }
  });

  it('a failed POST is logged and does not hold back the next Event of the same object', async () => {
    const api = new SlowApi();
    api.failNext = true;
    const r = new KubeEventRecorder(api, 'me', log);
    r.emit(t('review'), true, 'Synced', 'first');
    r.emit(t('review'), false, 'Synced', 'second');
    await api.drain();
    assert.deepEqual(api.posted.map((p) => p.message), ['second']);
  });

  it('flush() waits for the queued Events; a full queue drops new ones instead of growing', async () => {
    const api = new SlowApi();
    const r = new KubeEventRecorder(api, 'me', log, { maxQueued: 2 });
    r.emit(t('a'), false, 'Synced', 'one');
    r.emit(t('b'), false, 'Synced', 'two');
    r.emit(t('c'), false, 'Synced', 'dropped');
    let flushed = false;
    const f = r.flush(10_000).then(() => (flushed = true));
    await new Promise((res) => setImmediate(res));
    assert.equal(flushed, false, 'flush waits for the POSTs');
    await api.drain();
    await f;
    assert.deepEqual(api.posted.map((p) => p.message).sort(), ['one', 'two']);
  });
});
