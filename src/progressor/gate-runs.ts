/**
 * Gate runs outside the reconcile slots. A gate set takes as long as its slowest check: a webhook
 * may take up to its timeout (an hour at most), a load test minutes. Inside the controller's
 * bounded reconcile slots, a few such releases would stall every other one; so a run that has not
 * answered within `inlineMs` goes on in the background, the reconcile returns without deciding,
 * and the release is reconciled again when the run answers (`onDone`).
 *
 * An answer is for the state its run was started in (the reconciler's key: the same Deployment
 * (uid), stored status and gate configuration). Any commit, a new revision, or an edit of the
 * checks makes the runs of the older state stale: they are aborted and dropped. An answer is kept until a reconcile that used it has committed, so a commit
 * lost to a conflict or an API error is retried with the same answer instead of running the checks
 * again; it is not used once it is older than `maxAgeMs` (one analysis interval).
 *
 * Runs take one of a bounded number of slots (GateSlots, --gate-concurrency): with hundreds of
 * releases and a slow Prometheus or slow webhooks, up to one run per release would otherwise be in
 * flight at once. A run that waits for a slot has not started; its reconcile does not wait for it.
 */
import type { GateOutcome, PendingCheck } from './types.js';

/** For a Reconciler given no slots (tests, tools): --concurrency's default, as the CLI defaults --gate-concurrency to --concurrency. */
export const DEFAULT_GATE_CONCURRENCY = 32;

/**
 * At most `limit` gate runs in flight in the process; the others wait in the order they asked
 * (FIFO, so none is starved). One whose signal aborts while it waits leaves the queue unstarted.
 */
export class GateSlots {
  private inFlight = 0;
  /** Insertion-ordered: the first waiter gets the next free slot; an aborted one is deleted where it is. */
  private readonly queue = new Set<() => void>();

  constructor(
    private readonly limit: number,
    /** Each change of the counts, for the kube_canary_gate_runs gauge. */
    private readonly onChange: (counts: { waiting: number; running: number }) => void = () => {},
  ) {}

  /** `f()` once a slot is free, holding it until `f` settles; rejects without calling `f` if `signal` aborts first. */
  async run<T>(signal: AbortSignal, f: () => Promise<T>): Promise<T> {
    signal.throwIfAborted();
    if (this.inFlight < this.limit) {
      this.inFlight++;
      this.changed();
    } else {
      await this.turn(signal);
    }
    try {
      // Handed a slot in the same tick as it stopped being wanted.
      signal.throwIfAborted();
      return await f();
    } finally {
      this.release();
    }
  }

  /** Settles when a finishing run hands this one its slot (so no newcomer can take it in between). */
  private turn(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const go = () => {
        signal.removeEventListener('abort', leave);
        resolve();
      };
      const leave = () => {
        this.queue.delete(go);
        this.changed();
        reject(signal.reason);
      };
      this.queue.add(go);
      signal.addEventListener('abort', leave, { once: true });
      this.changed();
    });
  }

  private release(): void {
    const next = this.queue.values().next();
    if (next.done) {
      this.inFlight--;
    } else {
      this.queue.delete(next.value);
      next.value();
    }
    this.changed();
  }

  private changed(): void {
    this.onChange({ waiting: this.queue.size, running: this.inFlight });
  }
}

export interface GateAnswer {
  outcome: GateOutcome;
  /** The decision instant the run was started for: a check counts as done when it fell due. */
  requestedAt: number;
}

interface Run {
  requestedAt: number;
  answeredAt?: number;
  outcome?: GateOutcome;
  abort: AbortController;
  /** Settles when the run has answered (or failed, or was aborted). */
  done: Promise<void>;
  /** A reconcile returned without this run's answer: the answer wakes the release. */
  wake: boolean;
  /** What the run threw: the next reconcile that asks for it fails with it (backoff, ReconcileError Event), then it is dropped. */
  failed?: Error;
  /** Not started yet: waits for one of the GateSlots. */
  waiting: boolean;
  /** Its checks that have not answered yet (filled by `start`). */
  pending: Set<PendingCheck>;
}

/** A run that has not answered: since when it was asked for, whether it waits for a slot, and the checks it waits for. */
export interface RunProgress {
  requestedAt: number;
  waiting: boolean;
  pending: PendingCheck[];
}

export interface GateRunsOptions {
  /** How long the reconcile that starts a run waits for it before leaving it to the background. */
  inlineMs: number;
  /** A run that a reconcile stopped waiting for answered: reconcile its release again. */
  onDone(key: string): void;
  clock(): number;
  /** Shared by every release (and by the reconcilers of successive leadership terms). */
  slots: GateSlots;
}

export class GateRuns {
  private readonly byRelease = new Map<string, { state: string; runs: Map<string, Run> }>();

  constructor(private readonly o: GateRunsOptions) {}

  /**
   * The answer to `need` (gate kind, revision, phase) for release `key` in `state`: a kept one, or
   * a new run's if it answers within inlineMs; undefined while a run goes on in the background or
   * waits for a slot. `start` is called only when a new run is needed, once it has a slot.
   */
  async get(key: string, state: string, need: string, now: number, maxAgeMs: number, start: (signal: AbortSignal, pending: Set<PendingCheck>) => Promise<GateOutcome>, outer?: AbortSignal): Promise<GateAnswer | undefined> {
    const runs = this.runsFor(key, state);
    this.expire(runs, maxAgeMs);
    let run = runs.get(need);
    if (!run) {
      run = this.launch(key, need, runs, now, start, outer);
      // A run that waits for a slot waits for other releases' slow runs: not in a reconcile slot.
      if (!run.waiting) await this.waitInline(run);
    }
    if (run.failed) {
      // Said once, by the reconcile that gets it; the next one runs the gates again.
      runs.delete(need);
      throw run.failed;
    }
    if (run.outcome) return { outcome: run.outcome, requestedAt: run.requestedAt };
    run.wake = true;
    return undefined;
  }

  /**
   * Answers are dropped together once the newest of their state is older than maxAgeMs: a step
   * that needs two gate sets (analysis, then a confirm gate), each slower than the interval,
   * must not expire the first while the second runs, or it would never decide.
   */
  private expire(runs: Map<string, Run>, maxAgeMs: number): void {
    let newest = -Infinity;
    for (const r of runs.values()) {
      if (!r.outcome) return; // one still running (or failed, not yet said): the answers wait for it
      newest = Math.max(newest, r.answeredAt!);
    }
    if (this.o.clock() - newest > maxAgeMs) runs.clear();
  }

  /** A reconcile that used these answers committed its decision: they are spent. */
  spent(key: string, needs: Iterable<string>): void {
    const runs = this.byRelease.get(key)?.runs;
    if (!runs) return;
    for (const n of needs) if (runs.get(n)?.outcome) runs.delete(n);
    if (runs.size === 0) this.byRelease.delete(key);
  }

  /** The release is gone: its runs are aborted and their answers will not be looked at. */
  forget(key: string): void {
    const r = this.byRelease.get(key);
    if (!r) return;
    for (const run of r.runs.values()) run.abort.abort();
    this.byRelease.delete(key);
  }

  /** Release `key`'s run for `need`, while it has not answered. */
  progress(key: string, need: string): RunProgress | undefined {
    const run = this.byRelease.get(key)?.runs.get(need);
    if (!run || run.outcome || run.failed) return undefined;
    return { requestedAt: run.requestedAt, waiting: run.waiting, pending: [...run.pending] };
  }

  /** Runs waiting, in flight, or answered and not spent. */
  get size(): number {
    let n = 0;
    for (const r of this.byRelease.values()) n += r.runs.size;
    return n;
  }

  /** The release is in `state` now: the runs of any other state are aborted and dropped. */
  enter(key: string, state: string): void {
    const cur = this.byRelease.get(key);
    if (cur && cur.state !== state) this.forget(key);
  }

  private runsFor(key: string, state: string): Map<string, Run> {
    this.enter(key, state);
    const cur = this.byRelease.get(key);
    if (cur) return cur.runs;
    const runs = new Map<string, Run>();
    this.byRelease.set(key, { state, runs });
    return runs;
  }

  private launch(key: string, need: string, runs: Map<string, Run>, now: number, start: (signal: AbortSignal, pending: Set<PendingCheck>) => Promise<GateOutcome>, outer?: AbortSignal): Run {
    const abort = new AbortController();
    // Linked by hand and unlinked when done: the outer signal lives as long as the controller.
    const onAbort = () => abort.abort();
    outer?.addEventListener('abort', onAbort, { once: true });
    if (outer?.aborted) abort.abort();
    const run: Run = { requestedAt: now, abort, wake: false, waiting: true, done: Promise.resolve(), pending: new Set() };
    const current = () => !abort.signal.aborted && this.byRelease.get(key)?.runs === runs && runs.get(need) === run;
    runs.set(need, run);
    // An aborted run (its state left, the release gone, the controller stopped) rejects here,
    // started or not; it is not current() any more, so that is dropped like its answer would be.
    run.done = this.o.slots
      .run(abort.signal, () => {
        run.waiting = false;
        return start(abort.signal, run.pending);
      })
      .then(
        (outcome) => {
          if (!current()) return;
          run.outcome = outcome;
          run.answeredAt = this.o.clock();
          if (run.wake) this.o.onDone(key);
        },
        // Gate runners turn failures into failed checks; anything thrown is a bug: the reconcile
        // that gets it fails (retried with backoff, said in a ReconcileError Event); the next runs it again.
        (err: unknown) => {
          if (!current()) return;
          run.failed = err instanceof Error ? err : new Error(String(err));
          if (run.wake) this.o.onDone(key);
        },
      )
      .finally(() => outer?.removeEventListener('abort', onAbort));
    return run;
  }

  private async waitInline(run: Run): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([run.done, new Promise<void>((r) => (timer = setTimeout(r, this.o.inlineMs)))]);
    clearTimeout(timer);
  }
}
