/**
 * Kubernetes Events on the stable Deployment, so `kubectl describe deployment review` tells the
 * release's story. core/v1 Events (what `kubectl describe` lists), with a microsecond eventTime
 * so tools that sort by it see the true order of events that share a second.
 *
 * Recording is asynchronous, like client-go's event broadcaster: emit() queues and returns, so
 * a release step never waits for its Event (at 500 releases stepping together the Event POSTs
 * held reconcile slots that the next weight changes needed). Events of one object are sent in
 * order; a bounded number are in flight overall; the queue is bounded and flushed on shutdown.
 */
import type { Logger } from './logger.js';
import type { KubeHttp } from './http.js';

export interface EventTarget {
  namespace: string;
  name: string;
  uid?: string;
  resourceVersion?: string;
}

export interface EventRecorder {
  /** Queues the Event; never throws and never waits for the API. */
  emit(target: EventTarget, warning: boolean, reason: string, message: string): void;
}

export const REPORTING_COMPONENT = 'kube-canary-progressor';
const REPORTING_CONTROLLER = 'kube-canary.io/progressor';

export function microTime(d: Date): string {
  // MicroTime: RFC 3339 with 6 fractional digits.
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export interface RecorderOptions {
  /** Event POSTs in flight at once, over all objects. */
  concurrency?: number;
  /** Events queued beyond this are dropped (and logged): a dead API must not grow memory without bound. */
  maxQueued?: number;
}

export class KubeEventRecorder implements EventRecorder {
  private seq = 0;
  /** Per involved object, the last queued send: the next one chains on it, so order is kept. */
  private readonly tails = new Map<string, Promise<void>>();
  private queued = 0;
  private active = 0;
  private readonly slots: Array<() => void> = [];
  private readonly concurrency: number;
  private readonly maxQueued: number;

  constructor(private readonly http: Pick<KubeHttp, 'request'>, private readonly instance: string, private readonly log: Logger, o: RecorderOptions = {}) {
    this.concurrency = o.concurrency ?? 16;
    this.maxQueued = o.maxQueued ?? 5000;
  }

  emit(t: EventTarget, warning: boolean, reason: string, message: string): void {
    if (this.queued >= this.maxQueued) {
      this.log.warn({ namespace: t.namespace, deployment: t.name, reason, queued: this.queued }, 'event queue full; dropping event');
      return;
    }
    // Built now, so its timestamps are those of the transition, not of the send.
    const body = this.build(t, warning, reason, message);
    const key = `${t.namespace}/${t.name}`;
    this.queued += 1;
    const next = (this.tails.get(key) ?? Promise.resolve()).then(() => this.send(t, reason, body));
    this.tails.set(key, next);
    void next.then(() => {
      this.queued -= 1;
      if (this.tails.get(key) === next) this.tails.delete(key);
    });
  }

  /** Resolves when every queued Event was sent (or failed), or after `timeoutMs`. */
  async flush(timeoutMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
    await Promise.race([Promise.all([...this.tails.values()]), timeout]);
    clearTimeout(timer);
  }

  private build(t: EventTarget, warning: boolean, reason: string, message: string): object {
    const now = new Date();
    return {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${t.name}.${now.getTime().toString(16)}${(this.seq++ % 4096).toString(16).padStart(3, '0')}`, namespace: t.namespace },
      involvedObject: { apiVersion: 'apps/v1', kind: 'Deployment', name: t.name, namespace: t.namespace, ...(t.uid ? { uid: t.uid } : {}), ...(t.resourceVersion ? { resourceVersion: t.resourceVersion } : {}) },
      reason,
      // The API rejects messages over 1 KiB.
      message: message.length > 1000 ? `${message.slice(0, 997)}...` : message,
      type: warning ? 'Warning' : 'Normal',
      source: { component: REPORTING_COMPONENT },
      firstTimestamp: now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      lastTimestamp: now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      count: 1,
      eventTime: microTime(now),
      action: reason,
      reportingComponent: REPORTING_CONTROLLER,
      reportingInstance: this.instance.slice(0, 128),
    };
  }

  private async send(t: EventTarget, reason: string, body: object): Promise<void> {
    // A finished send hands its slot straight to the next waiter, so `active` never overshoots.
    if (this.active >= this.concurrency) await new Promise<void>((r) => this.slots.push(r));
    else this.active += 1;
    try {
      await this.http.request('POST', `/api/v1/namespaces/${t.namespace}/events`, { body, priority: 'low' });
    } catch (err) {
      // Events are best-effort: a lost Event must never block a release step.
      this.log.warn({ namespace: t.namespace, deployment: t.name, reason, err: (err as Error).message }, 'could not record event');
    } finally {
      const waiter = this.slots.shift();
      if (waiter) waiter();
      else this.active -= 1;
    }
  }
}
