/**
 * Kubernetes Events on the stable Deployment, so `kubectl describe deployment review` tells the
 * release's story. core/v1 Events (what `kubectl describe` lists), with a microsecond eventTime
 * so tools that sort by it see the true order of events that share a second.
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
  emit(target: EventTarget, warning: boolean, reason: string, message: string): Promise<void>;
}

export const REPORTING_COMPONENT = 'kube-canary-progressor';
const REPORTING_CONTROLLER = 'kube-canary.io/progressor';

function microTime(d: Date): string {
  // MicroTime: RFC 3339 with 6 fractional digits.
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class KubeEventRecorder implements EventRecorder {
  private seq = 0;

  constructor(private readonly http: KubeHttp, private readonly instance: string, private readonly log: Logger) {}

  async emit(t: EventTarget, warning: boolean, reason: string, message: string): Promise<void> {
    const now = new Date();
    const body = {
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
    try {
      await this.http.request('POST', `/api/v1/namespaces/${t.namespace}/events`, { body });
    } catch (err) {
      // Events are best-effort: a lost Event must never block a release step.
      this.log.warn({ namespace: t.namespace, deployment: t.name, reason, err: (err as Error).message }, 'could not record event');
    }
  }
}
